import pytest


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Run ``@pytest.mark.anyio`` tests on asyncio only: aiomoomoo is asyncio-based."""
    return "asyncio"
