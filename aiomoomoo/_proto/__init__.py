"""Generated protobuf modules: do not edit; regenerate with `nox -s proto`."""
