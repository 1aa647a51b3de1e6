from zion.node.cli import main

main()
