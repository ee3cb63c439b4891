from tests.core.conftest import fresh_outage_state

__all__ = ["fresh_outage_state"]
