from tentalis.cli.app import main

main()
