"""rgflow: neural-network field theories, their Feynman diagrams and Wilsonian RG flows.

Importing rgflow enables float64 in JAX (`jax_enable_x64`): theory code is float64 throughout.
"""

import jax as _jax

_jax.config.update("jax_enable_x64", True)

from ._ensemble import Measurement as Measurement
from ._ensemble import measure as measure
from ._ensemble import measure_widths as measure_widths
from ._exact import exact_connected as exact_connected
from ._exact import exact_moment as exact_moment
from ._exact import gp_correlator as gp_correlator
from ._frg import FixedPoint as FixedPoint
from ._frg import GridLPA as GridLPA
from ._frg import LPAFlow as LPAFlow
from ._frg import PolynomialLPA as PolynomialLPA
from ._frg import find_fixed_point as find_fixed_point
from ._frg import gaussian_exponents as gaussian_exponents
from ._frg import lpa_flow as lpa_flow
from ._frg import wilson_fisher as wilson_fisher
from ._frg import wilson_fisher_sequence as wilson_fisher_sequence
from ._frg_network import gauss_net_couplings as gauss_net_couplings
from ._nets import AbstractNet as AbstractNet
from ._nets import ErfNet as ErfNet
from ._nets import GaussNet as GaussNet
from ._nets import GenericNet as GenericNet
from ._nets import ReLUNet as ReLUNet
from ._nets import available_activations as available_activations
from ._nets import hms_inputs as hms_inputs
from ._nets import make_net as make_net
from ._neuron import neuron_moments as neuron_moments
from ._tuples import sorted_tuples as sorted_tuples
from ._tuples import to_full as to_full
from ._variance import ConditionalEstimate as ConditionalEstimate
from ._variance import NeuronEstimate as NeuronEstimate
from ._variance import measure_conditional as measure_conditional
from ._variance import measure_neurons as measure_neurons

__version__ = "0.1.0"
