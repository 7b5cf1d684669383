"""aiomoomoo's test suite: pure tests here, socket tests in `with_simulator/`."""
