"""Test support for deskgate: real services and a real browser for end-to-end tests.

- certs: throwaway RSA keys and self-signed certificates.
- simplesamlphp: SimpleSAMLphp (Debian package) as a SAML 2.0 IdP under `php -S`.
- browser: Playwright fixtures driving Debian's Chromium (no browser downloads).
- server: serve_app(app), a real uvicorn server in a thread.
- postgres: the throwaway PostgreSQL cluster of .ci/postgres.sh, from Python.

tests/ has no __init__.py, so pytest puts tests/ on sys.path: import as `support.<module>`
(e.g. `from support.simplesamlphp import start_simplesamlphp`). The modules import each
other relatively, so `tests.support` works too should tests/ become a package.
tests/support_selftest shows every piece in use.
"""
