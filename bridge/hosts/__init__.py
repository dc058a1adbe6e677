"""Installing the host scripts: one module per host (`reaper`, `resolve`), each with
`install(dest=None) -> list[Path]` that copies its scripts to where that host looks."""
