from aekit.cli import entry

entry()
