"""Sub-commands of the `miad` CLI; every public module here is discovered by `miad.cli`.

Each module's `run` imports what it needs inside itself (start-up time: building every parser, as `miad --help`
and each command do, loads no model code)."""
