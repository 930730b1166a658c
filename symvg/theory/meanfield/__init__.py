"""Wide random networks: mean-field signal propagation, the order/chaos line, and init rules derived.

A fully connected net of width n → ∞ with weights ~ N(0, σw²/n) and biases ~ N(0, σb²)
(Poole et al. 2016; Schoenholz et al. 2017, "Deep Information Propagation"; Pennington et al.
2017) is described by a few Gaussian expectations, u ~ N(0, 1): the variance map
q ↦ σw²·E[φ(√q u)²] + σb² and its fixed point q*, the gradient factor χ1 = σw²·E[φ'(√q* u)²]
(χ1 < 1 order: gradients vanish; χ1 > 1 chaos: they explode), the correlation map and the
depth scales ξ_q, ξ_c. Five modules, by job:

* :mod:`.quadrature` -- the Gaussian expectations: closed forms derived with SymPy
  (piecewise-polynomial φ, erf by Price's theorem), composite Gauss–Legendre otherwise;
* :mod:`.theory` -- the maps, fixed points, χ1, depth scales and verdict (:func:`mean_field`);
* :mod:`.critical` -- the critical σw² (checked after solving), phase diagram, init rules;
* :mod:`.smallq` -- the critical σw² at tiny σb² (q* < 1e-3), from the moments' series in √q, in mpmath;
* :mod:`.simulation` -- a Monte-Carlo check on finite random networks.

>>> mf = mean_field("relu", 2, 0)
>>> mf.chi1, mf.verdict
(1, 'critical')
>>> mean_field("leaky_relu:0.2", 1, "0.1").q_star   # σb²/(1 − σw²(1+a²)/2)
5/24
>>> critical_sigma_w2("relu", "0.3").sigma_w2          # He: 2, for any σb²
2

Everything else (tanh, sigmoid, GELU, SiLU, softplus, ELU, ...) is integrated by composite
Gauss–Legendre quadrature split at kinks, accurate to ~1e-12 (the tests compare it with mpmath):

>>> round(critical_sigma_w2("tanh", "0.05").sigma_w2, 6)   # Schoenholz et al. 2017: σw² ≈ 1.76
1.760955
"""

from __future__ import annotations

from symvg.theory.meanfield.critical import CriticalPoint, InitRule, PhaseDiagram, critical_sigma_w2, init_rules, phase_diagram
from symvg.theory.meanfield.quadrature import Q, Moments, bivariate_expect, correlation_kernels, gauss_expect, kinks, moments
from symvg.theory.meanfield.simulation import MAX_SIMULATION_WORK, Simulation, check_simulation_size, simulate
from symvg.theory.meanfield.theory import (CRITICAL_TOL, MeanField, chi1, correlation_map, mean_field, origin_slope,
                                          verdict)

__all__ = ["CRITICAL_TOL", "MAX_SIMULATION_WORK", "CriticalPoint", "InitRule", "MeanField", "Moments",
           "PhaseDiagram", "Q", "Simulation", "bivariate_expect", "chi1", "check_simulation_size", "correlation_kernels",
           "correlation_map", "critical_sigma_w2", "gauss_expect", "init_rules", "kinks", "mean_field", "moments",
           "origin_slope", "phase_diagram", "simulate", "verdict"]
