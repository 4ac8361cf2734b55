"""Test suites that a user's own code can run, as ``optuna.testing`` ships its storage tests.

``SpaceContract``: the search-space contract (``spaces.base.SearchSpace``) as pytest tests; the
package's own spaces run it in ``tests/contract/test_spaces.py``. It needs pytest.
"""

from __future__ import annotations

from mote_optuna.testing.space_contract import SpaceContract

__all__ = ["SpaceContract"]
