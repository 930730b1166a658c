"""Where the exact story meets the float: underflowing products and lost SGD updates.

The dtype facts and correct rounding live in :mod:`~symvg.theory.floats.rounding`, the underflow depth in
:mod:`~symvg.theory.floats.depth`, the SGD step in :mod:`~symvg.theory.floats.sgd`; every public name is
importable from here.

Two dtype facts decide whether a vanishing gradient does any harm in practice, and both are
read from :func:`numpy.finfo` (never from a table typed in by hand):

* **underflow** -- a product of N factors γ < 1 drops below the smallest *normal* number (from
  there on precision is lost digit by digit) and, later, to exactly 0. :func:`underflow` gives the
  exact depths (Rational arithmetic against the dtype's limits) *and* the depth at which the
  product, computed the way a framework computes it, really is 0 -- they can differ:

  >>> u = underflow("0.25", "float16")
  >>> u.below_normal_depth, u.exact_zero_depth, u.zero_depth
  (8, 13, 13)
  >>> underflow("0.75", "float16").zero_depth is None   # 0.75 * (smallest subnormal) rounds back up
  True

* **lost updates** -- an SGD step w - α·g changes nothing when |α·g| is below half the spacing of
  the dtype's numbers next to w. The seeds' deep product (six factors, g = 0.004125):

  >>> f = ["25", "0.25", "0.22", "0.20", "0.15", "0.10"]
  >>> [update("0.25", "0.01", factors=f, dtype=d).lost for d in ("float64", "float32", "float16")]
  [False, False, True]
  >>> update("0.25", "0.01", factors=f).new_weight_exact
  199967/800000

Inputs are exact Rationals (``"0.1"`` is 1/10); a value is converted to a dtype by correct rounding
(nearest, ties to even) and every later operation is NumPy's own arithmetic in that dtype.
"""

from __future__ import annotations

from symvg.theory.floats.rounding import DTYPES, dtype_text, dtypes, exact_text, limits, round_to
from symvg.theory.floats.depth import Underflow, first_power_below, simulate_zero_depth, underflow, underflow_table
from symvg.theory.floats.sgd import STEP_CAP, Update, simulate_steps, update, update_table

__all__ = ["DTYPES", "STEP_CAP", "dtype_text", "exact_text", "Underflow", "Update", "dtypes", "limits", "round_to", "first_power_below",
           "simulate_zero_depth", "simulate_steps", "underflow", "underflow_table", "update", "update_table"]
