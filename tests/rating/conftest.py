# The CDR tests' fixtures (staff, a digest profile, an IP profile) serve the engine's tests too.
from tests.cdrs.conftest import branch, profile, staff

__all__ = ["branch", "profile", "staff"]
