"""deskgate's benchmark: `uv run --group bench python -m bench` (see `bench/cli.py` and docs/benchmarks.md).

It measures SAML sign-in validation (in-process and over HTTP), the SCIM provisioning pattern of
Okta against deskgate and two peers (scim2-server and @boxyhq/saml-jackson's directory sync), and
deskgate at scale (an account with many agents, RSS during a large import). Everything it starts
listens on 127.0.0.1 and stops when the run ends.
"""
