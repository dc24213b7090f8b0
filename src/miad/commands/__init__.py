"""Sub-commands of the `miad` CLI; every public module here is discovered by `miad.cli`."""
