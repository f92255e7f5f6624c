"""rgflow: neural-network field theories, their Feynman diagrams and Wilsonian RG flows.

Three layers (docs/layers.md): this package is the importable theory library (flat private
modules re-exported here); `rgflow.studies` holds the paper's figure studies, one module each;
`rgflow.app` is the command line (`rgflow measure | exact | reproduce`). The core never imports
the studies, the app or matplotlib.

Importing rgflow enables float64 in JAX (`jax_enable_x64`): theory code is float64 throughout.
"""

import jax as _jax

_jax.config.update("jax_enable_x64", True)

from ._actions import AbstractInteraction as AbstractInteraction
from ._actions import Action as Action
from ._actions import BilocalQuartic as BilocalQuartic
from ._actions import FreeAction as FreeAction
from ._actions import LocalCoupling as LocalCoupling
from ._actions import NonlocalQuartic as NonlocalQuartic
from ._actions import PolynomialQuartic as PolynomialQuartic
from ._actions import make_interaction as make_interaction
from ._beta import MatchingProblem as MatchingProblem
from ._beta import beta as beta
from ._beta import matching_problem as matching_problem
from ._beta import refit as refit
from ._cosnet import CosNet as CosNet
from ._deep import DeepNet as DeepNet
from ._deform import Deformation as Deformation
from ._deform import FieldSample as FieldSample
from ._deform import box_quadrature as box_quadrature
from ._deform import nyquist_points as nyquist_points
from ._deform import reweighted_jackknife as reweighted_jackknife
from ._deform import sample_fields as sample_fields
from ._deform import tadpole_two_point as tadpole_two_point
from ._deform import tree_four_point as tree_four_point
from ._deep import LayerFlow as LayerFlow
from ._deep import layer_flow as layer_flow
from ._deep import perturbative_connected as perturbative_connected
from ._diagrams import Diagram as Diagram
from ._diagrams import VertexType as VertexType
from ._diagrams import enumerate_diagrams as enumerate_diagrams
from ._diagrams import tree_diagrams as tree_diagrams
from ._edgeworth import EdgeworthAction as EdgeworthAction
from ._edgeworth import edgeworth_action as edgeworth_action
from ._edgeworth import edgeworth_tensors as edgeworth_tensors
from ._ensemble import Measurement as Measurement
from ._ensemble import measure as measure
from ._ensemble import measure_widths as measure_widths
from ._exact import exact_connected as exact_connected
from ._freefield import FreeCosNet as FreeCosNet
from ._freefield import free_g4_connected as free_g4_connected
from ._freefield import free_propagator as free_propagator
from ._hmc import HMCSample as HMCSample
from ._hmc import integrated_autocorrelation_time as integrated_autocorrelation_time
from ._hmc import sample_hmc as sample_hmc
from ._exact import exact_moment as exact_moment
from ._exact import gp_correlator as gp_correlator
from ._fit import FitResult as FitResult
from ._fit import QuadraticModel as QuadraticModel
from ._fit import fit as fit
from ._fit import power_law as power_law
from ._fit_data import CorrelatorData as CorrelatorData
from ._fit_data import exact_data as exact_data
from ._fit_data import mc_data as mc_data
from ._fit_data import tree_model as tree_model
from ._flow import FlowSolution as FlowSolution
from ._flow import flow as flow
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
from ._integrals import QuadratureOptions as QuadratureOptions
from ._integrals import exchange_integrals as exchange_integrals
from ._integrals import vertex_integrals as vertex_integrals
from ._modes import KernelModes as KernelModes
from ._modes import kernel_modes as kernel_modes
from ._nets import AbstractNet as AbstractNet
from ._nets import ErfNet as ErfNet
from ._nets import GaussNet as GaussNet
from ._nets import GenericNet as GenericNet
from ._nets import ReLUNet as ReLUNet
from ._nets import available_activations as available_activations
from ._nets import hms_inputs as hms_inputs
from ._nets import make_net as make_net
from ._neuron import neuron_moments as neuron_moments
from ._predict import connected_correlator as connected_correlator
from ._predict import design_matrix as design_matrix
from ._projection import QuarticProjection as QuarticProjection
from ._projection import hms_quartic_bases as hms_quartic_bases
from ._projection import project_hms_bases as project_hms_bases
from ._projection import project_quartic as project_quartic
from ._relevance import coupling_dimensions as coupling_dimensions
from ._relevance import coupling_orders as coupling_orders
from ._relevance import dimensionful_exponents as dimensionful_exponents
from ._relevance import failed_checks as failed_checks
from ._relevance import field_dimension as field_dimension
from ._relevance import fit_residuals as fit_residuals
from ._relevance import flow_gap as flow_gap
from ._relevance import scaling_exponents as scaling_exponents
from ._relevance import width_hierarchy as width_hierarchy
from ._tuples import sorted_tuples as sorted_tuples
from ._tuples import to_full as to_full
from ._variance import ConditionalEstimate as ConditionalEstimate
from ._variance import NeuronEstimate as NeuronEstimate
from ._variance import measure_conditional as measure_conditional
from ._variance import measure_neurons as measure_neurons
from ._version import __version__ as __version__
from ._wilsonian import WilsonianAction as WilsonianAction
from ._wilsonian import WilsonianFlowSolution as WilsonianFlowSolution
from ._wilsonian import WilsonianRelevance as WilsonianRelevance
from ._wilsonian import integrate_out as integrate_out
from ._wilsonian import standardised_couplings as standardised_couplings
from ._wilsonian import wilsonian_flow as wilsonian_flow
from ._wilsonian import wilsonian_relevance as wilsonian_relevance
from ._xla_cache import enable_compilation_cache as enable_compilation_cache
