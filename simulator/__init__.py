"""A local Together-compatible chat-completions server with simulated QA models.

Import from the modules (`evalfleet.simulator.server`, `.config`): this package imports
nothing, so reading its model table does not start the server's imports."""
