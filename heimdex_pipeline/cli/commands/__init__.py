"""One module per `heimdex` command: its parser (`register`) and what it runs."""
