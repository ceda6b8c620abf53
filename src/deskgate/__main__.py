from deskgate.cli import main

main()
