"""Wilsonian mode elimination: the exact route and the Polchinski flow (physics.md §10).

**Set-up.** In the mode basis of the kernel (`rgflow.kernel_modes`: a = Vᵀ W f, Cov_GP(a) =
diag(λ)) the action of §9 reads S(a) = ½ Σ a_k²/λ_k + S_int(a),

    S_int(a) = Q_ij a_i a_j + L_ijkl a_i a_j a_k a_l + X_ijklmn a_i..a_n + c      (no 1/k!),

with symmetric tensors Q = (total quadratic) − ½ diag(1/λ) = O(1/N), L = O(1/N), X = O(1/N²).

**Exact route** (`integrate_out`). The kept amplitudes a_< (the `keep` largest modes) are a linear
projection of f, so their cumulants are the projections of the exact κ2, κ4, κ6 (physics.md §4)
and their Edgeworth action (`rgflow._edgeworth`) is the exact Wilsonian effective action
S_eff[a_<] = −log ∫ da_> e^{−S} to O(1/N²).

**Flow route** (`wilsonian_flow`). Mode k gets the IR propagator P_k(μ) = λ_k χ(λ_k/μ); the part
already integrated out is P̄_k = λ_k − P_k. Then e^{−S_int,μ} = exp(½ Σ_k P̄_k ∂²_k) e^{−S_int},
i.e. (t = ln μ, D_k = dP̄_k/dt)

    ∂_t S_int = ½ Σ_k D_k [∂²_k S_int − (∂_k S_int)²].

Inserting the polynomial and matching powers of a (with ∂_k S = 2(Qa)_k + 4(La³)_k + 6(Xa⁵)_k,
∂²_k S = 2Q_kk + 12 L_kk.. a² + 30 X_kk.... a⁴):

    dc/dt    = Σ_k D_k Q_kk
    dQ_ij/dt = 6 Σ_k D_k L_kkij − 2 Σ_k D_k Q_ki Q_kj
    dL/dt    = 15 Σ_k D_k X_kk.... − 8 Sym[Σ_k D_k Q_k· L_k···]
    dX/dt    = −8 Sym[Σ_k D_k L_k··· L_k···] − 12 Sym[Σ_k D_k Q_k· X_k·····]

(Sym: average over the index permutations). The dropped terms, 48 (La³)(Xa⁵) and 36 (Xa⁵)² in
(∂S)², are octic and higher, O(1/N³); they would feed back into the tensors above only at O(1/N³),
so the flow is exact to O(1/N²) — the same order as the exact route (the tadpoles are the ∂²
terms, the tree exchanges the (∂S)² terms; the one-loop bubble is the tadpole of the generated
sextic). For a purely quadratic interaction ½ m a² the flow closes exactly: m(μ) = m/(1 + m P̄),
c = ½ ln(1 + m P̄).

**Regulators.** "smooth": χ(x) = h(ln x / w) with the C^∞ step h(u) = ψ(1+u)/(ψ(1+u) + ψ(1−u)),
ψ(s) = e^{−1/s} (s > 0), ψ = 0 otherwise: χ = 0 for λ_k <= μ e^{−w}, χ = 1 for λ_k >= μ e^{w}
(w = `width`). So at any μ more than w (in ln) away from every eigenvalue the smooth flow has
removed exactly the modes with λ_k < μ and left the others untouched, like the sharp one.
"sharp": χ = θ(x − 1), a mode is removed when μ passes its eigenvalue (λ_k < μ). Since the ∂²_k
commute, the exact heat-equation operator depends only on the final P̄, not on the path; the
sharp flow uses that: between saved μ it follows the straight path P̄(τ) = P̄_0 + τ (P̄_1 − P̄_0),
τ ∈ [0, 1] (an exact representation of the jumps). The truncated flow is path independent up to
O(1/N³) (tested: smooth and sharp endpoints agree to that order).

**Directions.** μ increases towards the IR: increasing μ removes the modes with small eigenvalue
(fine structure, "UV"); μ → 0 removes nothing.

**Standardised couplings: what θ = n/2 is, and is not.** Rescaling the amplitudes to unit
propagator at the cutoff, a = √μ â, the n-leg couplings become ĝ_n = μ^{n/2} g_n (the Gaussian
term becomes ½ â (μ/P) â, unity for a mode whose propagator equals the cutoff μ). Their flow is

    dĝ_n/dt = (n/2) ĝ_n + μ^{n/2} β_n(g),

and the linearisation at the Gaussian point is block-triangular (the tadpoles map X → L → Q; the
exchanges are quadratic), so its eigenvalues are exactly θ = n/2: 1 (quadratic), 2 (quartic),
3 (sextic). These numbers are the rescaling convention itself — the engineering dimension of an
n-leg monomial under a = √μ â — and carry no information about the network: any other choice of
rescaling (e.g. a = μ^s â) gives θ = n·s, and without rescaling every θ is 0. There is no volume
factor and no momentum here to make one convention the physical one, so "relevant / irrelevant"
at the Gaussian point is a label of the convention, not a finding. What the flow does measure is
the running of the dimensionful kept couplings: zero at O(1/N) and ∝ 1/N² from O(1/N²), i.e.
running/coupling ∝ 1/N (structural: the kept-mode O(1/N) coupling is the amputated projection of
κ4, the same with or without the other modes), and the O(1/N) shifts of the eigenvalues at the
theory point (`wilsonian_relevance(point="theory")`). `wilsonian_relevance` keeps its `classes`
field for the convention it states; read θ − n/2 at the theory point, not θ, as the physics.
Where it holds: the truncated flow is exact to O(1/N²) only while the whitened cumulants of the
smallest modes are small — on the HMS Erf inputs N ≳ 10³ (docs/physics.md §10 gives the
measured flow-vs-exact gaps: 196 % at N = 30, a flow that blows up at N = 100, 36 % at
N = 300, 2.4 % at N = 10³).
"""

from __future__ import annotations

import functools
import itertools
import math

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._modes import KernelModes, kernel_modes
from ._validate import (
    check_bool,
    check_inputs,
    check_positive_int,
    check_real,
    check_real_array,
    check_solver,
    check_symmetric,
)

__all__ = [
    "DIRECTION",
    "WilsonianAction",
    "WilsonianFlowSolution",
    "WilsonianRelevance",
    "integrate_out",
    "wilsonian_flow",
    "wilsonian_relevance",
    "regulator_removed",
    "standardised_couplings",
]

DIRECTION = ("t = ln mu increases towards the IR: increasing mu removes the modes with kernel "
             "eigenvalue lambda_k < mu (small-eigenvalue, fine-structure modes); mu -> 0 removes "
             "nothing. theta > 0: the standardised coupling (a = sqrt(mu) a_hat) grows towards "
             "the IR; at the Gaussian point theta = n/2 is that rescaling convention itself, not "
             "a property of the network.")


# ------------------------------------------------------------------------------ exact route --


def _exact_cumulants(net, xs, orders):
    """Full symmetric exact cumulant arrays {order: (P,)*order} of `net` on `xs` (§4)."""
    if hasattr(net, "exact_connected"):  # rgflow.CosNet and other nets with closed forms
        return {n: jnp.asarray(net.exact_connected(xs, n)) for n in orders}
    from ._exact import exact_connected

    return {n: exact_connected(net, xs, n, full=True) for n in orders}


class WilsonianAction(eqx.Module):
    """The exact Wilsonian effective action of the kept modes (`integrate_out`).

    **Fields:**

    - `action`: the Edgeworth action (an `EdgeworthAction`) of the kept amplitudes a_<, in the
      mode basis: S_eff(a_<) = Σ quadratic a a + Σ quartic a⁴ + Σ sextic a⁶ (+ const), no 1/k!.
    - `modes`: the `KernelModes` of the full input set.
    - `keep`: the number of kept (largest-eigenvalue) modes M.
    - `cumulants`: dict order → the projected exact cumulants of a_< `(M,)*order`.
    - `order`: the order in 1/N of the Edgeworth action.
    """

    action: eqx.Module
    modes: KernelModes
    cumulants: dict
    keep: int = eqx.field(static=True)
    order: int = eqx.field(static=True)

    @property
    def quadratic(self):
        return self.action.quadratic

    @property
    def quartic(self):
        return self.action.quartic

    @property
    def sextic(self):
        return self.action.sextic

    @property
    def interaction_quadratic(self):
        """Q = quadratic − ½ diag(1/λ_<): the quadratic part of the interaction."""
        lam = self.modes.eigenvalues[: self.keep]
        return self.action.quadratic - 0.5 * jnp.diag(1.0 / lam)


def integrate_out(net, xs, keep, *, order: int = 2, weights=None, allow_split: bool = False,
                  modes: KernelModes | None = None, max_condition: float | None = None,
                  cumulants: dict | None = None) -> WilsonianAction:
    """The exact Wilsonian effective action of the `keep` largest kernel modes (physics.md §10).

    The kept amplitudes a_< = (Vᵀ W f)_{k <= keep} have the exactly projected cumulants
    κ_n(a_<) = (VᵀW)^{⊗n} κ_n(f) (κ2 = K, κ4 = G4_c, κ6 = G6_c of physics.md §4); their
    Edgeworth action (physics.md §9) is S_eff[a_<] = −log ∫ da_> e^{−S} to O(1/N^order).

    **Arguments:**

    - `net`: an rgflow network (exact correlators at its width), e.g. `ErfNet(width=100)`, or a
      `CosNet`.
    - `xs`: inputs `(P, d_in)`.
    - `keep`: the number M of kept modes, 1 <= M <= P; must not split a degenerate eigenspace
      unless `allow_split`.
    - `order`: 1 or 2, the order in 1/N of the Edgeworth action.
    - `weights`: data weights of the inner product (default uniform 1/P).
    - `modes`: precomputed `kernel_modes(net, xs, weights=weights)` (optional).
    - `max_condition`: largest accepted λ_1/λ_keep (passed to the Edgeworth construction,
      default `rgflow._edgeworth.DEFAULT_MAX_CONDITION`): beyond it the amputated cumulants of
      the smallest kept modes have no significant digits.
    - `cumulants`: optional dict {4: κ4, 6: κ6} of full `(P,)*n` cumulant arrays of f on `xs`
      (e.g. Monte Carlo estimates, or exact ones reused across widths); default: exact (§4).

    **Returns:** a `WilsonianAction` (mode basis).
    """
    from ._edgeworth import (
        DEFAULT_MAX_CONDITION,
        EdgeworthAction,
        _edgeworth_all,
        check_max_condition,
    )

    if max_condition is None:
        max_condition = DEFAULT_MAX_CONDITION
    max_condition = check_max_condition(max_condition)
    if isinstance(order, (bool, np.bool_)) or order not in (1, 2):
        raise ValueError(f"`order` must be 1 or 2, got {order!r}.")
    order = int(order)
    if not (hasattr(net, "kernel") and hasattr(net, "d_in")):
        raise TypeError(f"`net` must be an rgflow network (ErfNet, CosNet, ...), got {net!r}.")
    xs = check_inputs(xs, net.d_in)
    if modes is None:
        modes = kernel_modes(net, xs, weights=weights)
    elif not isinstance(modes, KernelModes):
        raise TypeError(f"`modes` must be a KernelModes (rgflow.kernel_modes) or None, "
                        f"got {type(modes).__name__}.")
    else:
        k = np.asarray(net.kernel(jnp.asarray(xs), jnp.asarray(xs)))
        if modes.n_modes != xs.shape[0] or not np.allclose(
                np.asarray(modes.kernel), k, rtol=1e-8, atol=1e-12 * np.max(np.abs(k))):
            raise ValueError(f"`modes` ({modes.n_modes} modes) are not the kernel modes of `net` "
                             f"on `xs` ({xs.shape[0]} inputs); use kernel_modes(net, xs).")
    keep = modes.check_keep(keep, allow_split=allow_split)
    needed = (4, 6) if order == 2 else (4,)
    if cumulants is None:
        cum = _exact_cumulants(net, xs, needed)
    else:
        from collections.abc import Mapping

        from ._validate import check_symmetric

        if not isinstance(cumulants, Mapping):
            raise TypeError("`cumulants` must be a dict {4: κ4, 6: κ6} of full cumulant arrays, "
                            f"got {type(cumulants).__name__}.")
        p = modes.n_modes
        cum = {}
        for n in needed:
            if n not in cumulants:
                raise ValueError(f"`cumulants` must map {n} to a full {(p,) * n} array "
                                 f"(order={order} needs orders {needed}).")
            try:
                cum[n] = jnp.asarray(check_symmetric("cumulants", cumulants[n], n, p))
            except (TypeError, ValueError) as e:
                raise type(e)(f"{e} (order {n})") from None
    proj = modes.to_modes_matrix[:keep]
    from ._modes import _contract_legs

    kept = {2: jnp.diag(modes.eigenvalues[:keep])}
    for n, c in cum.items():
        kept[n] = _contract_legs(jnp.asarray(c), proj)
    quad, quart, sext, const = _edgeworth_all(kept[2], kept[4], kept.get(6), order, max_condition)
    action = EdgeworthAction(quad, quart, sext, kept[2], order=order, constant=const)
    return WilsonianAction(action=action, modes=modes, cumulants=kept, keep=keep, order=order)


# ------------------------------------------------------------------------------ regulators --


def _psi(s):
    pos = s > 0
    return jnp.where(pos, jnp.exp(-1.0 / jnp.where(pos, s, 1.0)), 0.0)


def _smooth_step(u):
    """C^∞ step: 0 for u <= −1, 1 for u >= 1."""
    a, b = _psi(1.0 + u), _psi(1.0 - u)
    return a / (a + b)


def regulator_removed(eigenvalues, mu, *, regulator: str = "smooth", width: float = 0.5):
    """P̄_k(μ) = λ_k (1 − χ(λ_k/μ)): the part of each mode's propagator already integrated out.

    smooth: χ(x) = h(ln x / width) (module docstring); sharp: χ(x) = 1 for x >= 1, else 0.
    **Returns:** an array `(..., P)` for `mu` of shape `(...)`.
    """
    lam = jnp.asarray(eigenvalues)
    mu = jnp.asarray(mu, jnp.float64)[..., None]
    if regulator == "sharp":
        return jnp.where(lam < mu, lam, 0.0)
    u = (jnp.log(lam) - jnp.log(mu)) / width
    return lam * (1.0 - _smooth_step(u))


# ------------------------------------------------------------------------------ β functions --


def _sym_first(t):
    """Symmetrise a tensor symmetric in all but its first axis (average over its position)."""
    n = t.ndim
    return sum(jnp.moveaxis(t, 0, p) for p in range(n)) / n


_SPLITS_33 = [(a, tuple(i for i in range(6) if i not in a))
              for a in itertools.combinations(range(6), 3) if 0 in a]


def _sym_33(t):
    """Symmetrise a 6-tensor symmetric within its two triples and under their exchange."""
    out = "abcdef"
    total = 0.0
    for a, b in _SPLITS_33:
        src = "".join(out[i] for i in a + b)
        total = total + jnp.einsum(f"{src}->{out}", t)
    return total / len(_SPLITS_33)


def _beta(state, d):
    """d(state)/dt for state = (c, Q, L, X) and D_k = dP̄_k/dt (module docstring)."""
    c, q, l4, x6 = state
    dc = jnp.sum(d * jnp.diagonal(q))
    dq = 6 * jnp.einsum("k,kkij->ij", d, l4) - 2 * jnp.einsum("k,ki,kj->ij", d, q, q)
    dl = 15 * jnp.einsum("k,kkijlm->ijlm", d, x6) - 8 * _sym_first(
        jnp.einsum("k,ki,kjlm->ijlm", d, q, l4))
    dx = -8 * _sym_33(jnp.einsum("k,kijl,kmnp->ijlmnp", d, l4, l4)) - 12 * _sym_first(
        jnp.einsum("k,ki,kjlmnp->ijlmnp", d, q, x6))
    return dc, dq, dl, dx


# ------------------------------------------------------------------------------ solution --


class WilsonianFlowSolution(eqx.Module):
    """The result of `wilsonian_flow` (mode basis; physics.md §10).

    **Fields:**

    - `mu`: the saved cutoffs μ `(n,)` (increasing: towards the IR, see `direction`).
    - `eigenvalues`: the kernel eigenvalues λ `(P,)`.
    - `propagator`: P_k(μ) `(n, P)`; `removed`: P̄_k(μ) = λ_k − P_k `(n, P)`.
    - `quadratic`: the interaction quadratic Q(μ) `(n, P, P)` (total = ½ diag(1/P) + Q on the
      kept modes); `quartic` `(n, P, P, P, P)`; `sextic` `(n,) + (P,)*6` or None if not saved;
      `constant` c(μ) `(n,)` (the vacuum energy −log of the integrated Gaussian weight).
    - `regulator`, `width`: the regulator and its width in ln μ.
    - `result`: the `diffrax.RESULTS` code (worst over segments); `stats`: solver statistics.
    - `direction`: the direction convention (a string, `rgflow._wilsonian.DIRECTION`).
    """

    mu: jax.Array
    eigenvalues: jax.Array
    propagator: jax.Array
    removed: jax.Array
    quadratic: jax.Array
    quartic: jax.Array
    sextic: jax.Array | None
    constant: jax.Array
    result: diffrax.RESULTS
    stats: dict
    regulator: str = eqx.field(static=True)
    width: float = eqx.field(static=True)
    direction: str = eqx.field(static=True, default=DIRECTION)

    @property
    def succeeded(self) -> bool:
        """True if every segment of the solve finished and every saved tensor is finite."""
        if not bool(self.result == diffrax.RESULTS.successful):
            return False
        parts = (self.quadratic, self.quartic, self.constant) + (
            () if self.sextic is None else (self.sextic,))
        return all(bool(np.all(np.isfinite(np.asarray(t)))) for t in parts)

    def check_succeeded(self, name: str = "solution"):
        """Raise a ValueError naming `name` if the flow failed (solver stopped or non-finite)."""
        if not self.succeeded:
            raise ValueError(
                f"`{name}`: the flow did not succeed (diffrax result: "
                f"{self.result}, saved tensors finite: "
                f"{all(bool(np.all(np.isfinite(np.asarray(t)))) for t in (self.quadratic, self.quartic))}; "
                f"{self.stats.get('num_steps', '?')} steps); its couplings are not a solution. "
                "Raise `max_steps` or loosen `rtol`/`atol`.")
        return self

    def kept(self, i: int) -> np.ndarray:
        """Indices of the modes not (fully) integrated out at the i-th saved μ (P_k > 0)."""
        return np.flatnonzero(np.asarray(self.propagator)[i] > 0)

    def kept_tensors(self, i: int):
        """(total quadratic, quartic, sextic) of the kept modes at the i-th μ, the removed modes'
        amplitudes set to zero: S_eff = ½ a P⁻¹ a + S_int,μ(a_<, a_> = 0)."""
        k = self.kept(i)
        ix = np.ix_
        # sliced on the host (eager slices of device arrays would compile one program each)
        quad = (np.asarray(self.quadratic)[i][ix(k, k)]
                + 0.5 * np.diag(1.0 / np.asarray(self.propagator)[i][k]))
        quart = np.asarray(self.quartic)[i][ix(k, k, k, k)]
        sext = None if self.sextic is None else np.asarray(self.sextic)[i][ix(*(k,) * 6)]
        return (jnp.asarray(quad), jnp.asarray(quart),
                None if sext is None else jnp.asarray(sext))

    def kept_action(self, i: int):
        """The kept-mode effective action at the i-th μ as an `EdgeworthAction` (mode basis)."""
        from ._edgeworth import EdgeworthAction

        quad, quart, sext = self.kept_tensors(i)
        k = self.kept(i)
        if sext is None:
            raise ValueError("the sextic was not saved (save_sextic=False).")
        return EdgeworthAction(quad, quart, sext, jnp.diag(self.propagator[i][k]), order=2)


# ------------------------------------------------------------------------------ the flow --


def _check_mu(mu) -> np.ndarray:
    m = np.atleast_1d(check_real_array("mu", mu, finite=False))
    if m.ndim != 1 or m.size < 1:
        raise ValueError(f"`mu` must be a 1-d array of cutoffs, got shape {m.shape}.")
    if not np.all(np.isfinite(m)) or np.any(m <= 0):
        raise ValueError(f"`mu` must be finite and > 0, got {m}.")
    if np.any(np.diff(m) <= 0):
        raise ValueError(f"`mu` must be strictly increasing (towards the IR), got {m}.")
    return m


def _action_tensors(action, p):
    """(quadratic, quartic, sextic) full arrays from an EdgeworthAction, WilsonianAction or tuple."""
    if isinstance(action, WilsonianAction):
        action = action.action
    if isinstance(action, (tuple, list)):
        if len(action) != 3:
            raise ValueError("`action` as a tuple must be (quadratic, quartic, sextic).")
        quad, quart, sext = action
    elif hasattr(action, "quadratic") and hasattr(action, "quartic"):
        quad, quart, sext = action.quadratic, action.quartic, getattr(action, "sextic", None)
    else:
        raise TypeError("`action` must be an EdgeworthAction, a WilsonianAction or a tuple "
                        "(quadratic, quartic, sextic) of mode-basis tensors.")
    out = []
    for name, t, n in (("quadratic", quad, 2), ("quartic", quart, 4), ("sextic", sext, 6)):
        if t is None and n > 2:
            out.append(jnp.zeros((p,) * n))
            continue
        try:
            arr = check_real_array("action", t)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{e} (the {name} tensor)") from None
        if arr.shape != (p,) * n:
            raise ValueError(f"the {name} tensor of `action` must have shape {(p,) * n} "
                             f"(all P modes, mode basis), got {arr.shape}.")
        try:
            check_symmetric("action", arr, n, p, rtol=1e-4)  # as EdgeworthAction's check
        except ValueError as e:
            raise ValueError(f"{e} (the {name} tensor)") from None
        out.append(jnp.asarray(arr))
    return tuple(out)


@eqx.filter_jit
def _solve_segment(state, scales, t0, t1, ts, dfun, args, solver, rtol, atol, dtmax, step_ts,
                   max_steps, save_sextic):
    def rhs(t, y, args):
        real = tuple(a * s for a, s in zip(y, scales))
        b = _beta(real, dfun(t, args))
        return tuple(a / s for a, s in zip(b, scales))

    def save(t, y, args):
        real = tuple(a * s for a, s in zip(y, scales))
        return real if save_sextic else real[:3]

    y0 = tuple(a / s for a, s in zip(state, scales))
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(rhs), solver, t0=t0, t1=t1, dt0=None, y0=y0, args=args,
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol, dtmax=dtmax,
                                                  step_ts=step_ts),
        saveat=diffrax.SaveAt(ts=ts, fn=save), max_steps=max_steps, throw=False,
    )
    final = jax.tree_util.tree_map(lambda a: a[-1], sol.ys)
    return sol.ys, final, sol.result, sol.stats


def _smooth_d(t, args):
    lam, width = args
    return jax.jvp(lambda s: regulator_removed(lam, jnp.exp(s), width=width), (t,),
                   (jnp.ones_like(t),))[1]


def _linear_d(t, args):
    return args


def wilsonian_flow(
    action,
    modes: KernelModes,
    mu,
    *,
    regulator: str = "smooth",
    width: float = 0.5,
    basis: str = "modes",
    solver=None,
    rtol: float = 1e-11,
    atol: float = 1e-13,
    max_steps: int = 65536,
    save_sextic: bool = True,
) -> WilsonianFlowSolution:
    """The Polchinski / heat-equation flow of the polynomial action (physics.md §10).

    Integrates ∂_t S_int = ½ Σ_k (dP̄_k/dt)[∂²_k S_int − (∂_k S_int)²] (β-functions in the module
    docstring; exact to O(1/N²)) with diffrax in t = ln μ, from μ → 0 (nothing removed; the
    smooth regulator is exactly inactive below min λ · e^{−width}) up through the eigenvalues,
    saving at each `mu`.

    **Arguments:**

    - `action`: the action of all P modes at μ = 0: an `EdgeworthAction` / `WilsonianAction`
      (e.g. `integrate_out(net, xs, P)`), or a tuple `(quadratic, quartic, sextic)` of full
      symmetric tensors (quartic/sextic may be None = 0), total quadratic = ½ diag(1/λ) + Q.
    - `modes`: the `KernelModes` (their eigenvalues λ set the Gaussian part and the regulator).
    - `mu`: cutoffs `(n,)`, > 0, strictly increasing (towards the IR).
    - `regulator`: "smooth" (C^∞ compactly supported step of half-width `width` in ln μ) or
      "sharp" (the limit; exact straight-path jumps between saved μ).
    - `width`: the smooth regulator's half-width in ln μ (> 0).
    - `basis`: "modes" (tensors already in the mode basis) or "inputs" (transformed with
      `modes.action_to_modes`).
    - `solver`: a diffrax solver (default `diffrax.Tsit5()`).
    - `rtol`, `atol`: step-size tolerances on the tensors scaled by their initial size.
    - `max_steps`: diffrax step limit per segment.
    - `save_sextic`: store the sextic at every μ (P⁶ numbers each; False saves memory).

    **Returns:** a `WilsonianFlowSolution`.
    """
    if not isinstance(modes, KernelModes):
        raise TypeError(f"`modes` must be a KernelModes (rgflow.kernel_modes), got {modes!r}.")
    mu = _check_mu(mu)
    if not isinstance(regulator, str) or regulator not in ("smooth", "sharp"):
        raise ValueError(f"`regulator` must be 'smooth' or 'sharp', got {regulator!r}.")
    width = check_real("width", width, positive=True)
    if not isinstance(basis, str) or basis not in ("modes", "inputs"):
        raise ValueError(f"`basis` must be 'modes' or 'inputs', got {basis!r}.")
    rtol = check_real("rtol", rtol, positive=True)
    atol = check_real("atol", atol, positive=True)
    max_steps = check_positive_int("max_steps", max_steps)
    save_sextic = check_bool("save_sextic", save_sextic)
    solver = check_solver("solver", solver, default=diffrax.Tsit5())
    lam = modes.eigenvalues
    p = modes.n_modes
    quad, quart, sext = _action_tensors(action, p)
    if basis == "inputs":
        quad, quart, sext = (modes.action_to_modes(t) for t in (quad, quart, sext))
    q0 = quad - 0.5 * jnp.diag(1.0 / lam)
    state = (jnp.zeros(()), q0, quart, sext)
    # overflow before integrating: a bound on the β-functions (module docstring), which square
    # the tensors, with D_k <= max λ_k (NumPy scalars: no compilation)
    with np.errstate(over="ignore", invalid="ignore"):
        a_q, a_l, a_x = (np.float64(np.max(np.abs(np.asarray(t)))) for t in state[1:])
        bound = (np.float64(np.max(np.asarray(lam))) * p**2 * 100
                 * (a_q * a_q + a_l + a_x + a_q * a_l + a_l * a_l + a_q * a_x))
    if not np.isfinite(bound) or bound > 1e300:
        raise ValueError("`action`: the β-functions of its tensors overflow float64 (the "
                         "products of its couplings with the eigenvalues are too large); "
                         "rescale the fields.")
    big = max(float(jnp.max(jnp.abs(t))) for t in state[1:])
    big = big if big > 0 else 1.0
    scales = tuple(jnp.asarray(v, jnp.float64) for v in
                   (1.0,) + tuple(float(jnp.max(jnp.abs(t))) or big for t in state[1:]))
    removed = regulator_removed(lam, mu, regulator=regulator, width=width)
    propagator = lam[None] - removed
    results, stats = [], {"num_steps": 0, "num_accepted_steps": 0, "num_rejected_steps": 0}
    saved = []
    if regulator == "smooth":
        log_lam = np.log(np.asarray(lam))
        t0 = min(float(np.log(mu[0])), float(log_lam.min()) - width) - 1e-3
        edges = np.sort(np.concatenate([log_lam - width, log_lam, log_lam + width]))
        ts = np.log(mu)
        step_ts = edges[(edges > t0) & (edges < ts[-1])]
        step_ts = jnp.asarray(step_ts if step_ts.size else np.array([0.5 * (t0 + ts[-1])]))
        ys, _, res, st = _solve_segment(
            state, scales, jnp.asarray(t0), jnp.asarray(ts[-1]), jnp.asarray(ts), _smooth_d,
            (lam, float(width)), solver, float(rtol), float(atol), None, step_ts,
            int(max_steps), bool(save_sextic))
        results.append(res)
        for k in stats:
            stats[k] += int(st[k])
        saved = ys
    else:
        prev = jnp.zeros(p)
        rows = []
        for i in range(mu.size):
            d = removed[i] - prev
            if bool(jnp.any(d != 0)):
                _, state, res, st = _solve_segment(
                    state, scales, jnp.asarray(0.0), jnp.asarray(1.0), jnp.asarray([1.0]),
                    _linear_d, d, solver, float(rtol), float(atol), 0.25,
                    jnp.asarray([0.5]), int(max_steps), True)
                results.append(res)
                for k in stats:
                    stats[k] += int(st[k])
            prev = removed[i]
            rows.append(state if save_sextic else state[:3])
        saved = tuple(jnp.stack(parts) for parts in zip(*rows))
    result = diffrax.RESULTS.successful
    for r in results:
        if not bool(r == diffrax.RESULTS.successful):
            result = r
    return WilsonianFlowSolution(
        mu=jnp.asarray(mu), eigenvalues=lam, propagator=propagator, removed=removed,
        quadratic=saved[1], quartic=saved[2], sextic=saved[3] if save_sextic else None,
        constant=saved[0], result=result, stats=stats, regulator=regulator, width=float(width),
    )


# ------------------------------------------------------------------------------ relevance --


def standardised_couplings(solution: WilsonianFlowSolution) -> dict:
    """Standardised couplings ĝ_n = μ^{n/2} g_n of the kept modes at every saved μ (module
    docstring: amplitudes rescaled to unit propagator at the cutoff, a = √μ â).

    **Returns:** a dict with `mu` `(n,)`, `kept` `(n, P)` bool (P_k(μ) > 0), `quadratic`
    `(n, P, P)`, `quartic` `(n,) + (P,)*4`, `sextic` (or None) with every entry that touches a
    removed mode set to NaN, and `direction` (the convention string).
    """
    if not isinstance(solution, WilsonianFlowSolution):
        raise TypeError("`solution` must be a WilsonianFlowSolution (rgflow.wilsonian_flow).")
    solution.check_succeeded()
    mu = np.asarray(solution.mu)
    kept = np.asarray(solution.propagator) > 0

    def mask(t, n):
        t = np.array(t, dtype=np.float64) * (mu ** (n / 2)).reshape((-1,) + (1,) * n)
        for i in range(mu.size):
            ok = kept[i]
            m = ok
            for _ in range(n - 1):
                m = np.multiply.outer(m, ok)
            t[i][~m] = np.nan
        return t

    with np.errstate(over="ignore", invalid="ignore"):
        out = {"mu": mu, "kept": kept, "quadratic": mask(solution.quadratic, 2),
               "quartic": mask(solution.quartic, 4),
               "sextic": None if solution.sextic is None else mask(solution.sextic, 6),
               "direction": solution.direction}
    for n, name in ((2, "quadratic"), (4, "quartic"), (6, "sextic")):
        t = out[name]
        if t is None:
            continue
        for i in range(mu.size):
            block = t[i][np.ix_(*(np.flatnonzero(kept[i]),) * n)]
            if not np.all(np.isfinite(block)):
                raise ValueError(f"`solution`: the standardised {name} couplings μ^{n // 2} g of "
                                 f"the kept modes overflow float64 at μ = {mu[i]:g}.")
    return out


class WilsonianRelevance(eqx.Module):
    """Linearised flow of the standardised couplings at one cutoff (`wilsonian_relevance`).

    **Fields:**

    - `mu`: the cutoff; `kept`: the kept mode indices.
    - `theta`: eigenvalues θ of ∂β̂/∂ĝ (real parts, descending); θ > 0: the standardised
      coupling grows towards the IR. At the Gaussian point θ = n/2 exactly: the engineering
      dimension of the convention a = √μ â, not a property of the network (module docstring);
      the physics is in θ − n/2 at the theory point.
    - `degree`: for each θ, the number of legs (2, 4, 6) of the leading monomial of its
      eigen-direction (exact at the Gaussian point, where θ = degree/2; continued from the nearest
      Gaussian eigenvalue at the theory point); `classes`: "relevant" / "marginal" /
      "irrelevant" in the a = √μ â convention (labels of the rescaling, not findings).
    - `matrix`: ∂β̂/∂ĝ on the independent (index-sorted) entries of the kept-mode tensors.
    - `point`: "gaussian" (ĝ = 0) or "theory" (the flowing couplings at μ).
    - `direction`: the direction convention.
    """

    mu: float = eqx.field(static=True)
    kept: tuple = eqx.field(static=True)
    theta: np.ndarray
    degree: np.ndarray
    classes: tuple = eqx.field(static=True)
    matrix: np.ndarray
    point: str = eqx.field(static=True)
    direction: str = eqx.field(static=True, default=DIRECTION)


@functools.partial(jax.jit, static_argnums=3)
def _standardised_jacobian(v, mu, d, m):
    """∂β̂/∂ĝ at `v` (the index-sorted entries of the m-mode Q̂, L̂, X̂), one compiled program per
    number of kept modes m (μ and the regulator derivatives d are traced)."""
    from ._tuples import from_full, to_full

    sizes = [math.comb(m + n - 1, n) for n in (2, 4, 6)]

    def beta_hat(v):
        parts, start = [], 0
        for n, size in zip((2, 4, 6), sizes):
            parts.append(to_full(v[start:start + size], m, n))
            start += size
        qh, lh, xh = parts
        g = (qh / mu, lh / mu**2, xh / mu**3)
        _, dq, dl, dx = _beta((jnp.zeros(()),) + g, d)
        out = (qh + mu * dq, 2 * lh + mu**2 * dl, 3 * xh + mu**3 * dx)
        return jnp.concatenate([from_full(o, n) for o, n in zip(out, (2, 4, 6))])

    return jax.jacfwd(beta_hat)(v)


def wilsonian_relevance(solution: WilsonianFlowSolution, index: int = -1, *,
                        point: str = "gaussian", tol: float = 1e-6,
                        max_modes: int = 6) -> WilsonianRelevance:
    """Relevance of the kept-mode operators from the linearised flow of the standardised couplings
    (physics.md §10; module docstring).

    dĝ_n/dt = (n/2) ĝ_n + μ^{n/2} β_n(ĝ μ^{−n/2}), t = ln μ (towards the IR), restricted to the
    modes kept at the `index`-th saved μ (β of kept-mode couplings involves only kept modes: a
    removed mode has dP̄/dt = 0). Differentiated by autodiff at the Gaussian point (`point=
    "gaussian"`, where the eigenvalues are exactly 1, 2, 3 for the quadratic, quartic, sextic
    operators: the tadpoles X → L → Q make the matrix block-triangular) or at the flowing
    couplings themselves (`point="theory"`, shifted by O(1/N)). The Gaussian-point values n/2
    are the rescaling convention a = √μ â (module docstring), not a classification of the
    network's operators.

    **Arguments:** `solution` (needs the sextic saved), `index` of the saved μ, `point`, `tol`
    (marginal band), `max_modes` (largest number of kept modes: the matrix has
    C(M+1,2) + C(M+3,4) + C(M+5,6) rows).

    **Returns:** a `WilsonianRelevance`.
    """
    from ._tuples import from_full

    if not isinstance(solution, WilsonianFlowSolution):
        raise TypeError("`solution` must be a WilsonianFlowSolution (rgflow.wilsonian_flow).")
    if solution.sextic is None:
        raise ValueError("`solution` must have the sextic saved (save_sextic=True).")
    solution.check_succeeded()
    if not isinstance(point, str) or point not in ("gaussian", "theory"):
        raise ValueError(f"`point` must be 'gaussian' or 'theory', got {point!r}.")
    tol = check_real("tol", tol, minimum=0.0)
    max_modes = check_positive_int("max_modes", max_modes)
    n_save = int(solution.mu.shape[0])
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not (
            -n_save <= index < n_save):
        raise ValueError(f"`index` must be an integer in [{-n_save}, {n_save}), got {index!r}.")
    mu = float(solution.mu[index])
    kept = solution.kept(index)
    m = kept.size
    if m > max_modes:
        raise ValueError(f"{m} kept modes exceed `max_modes` = {max_modes} (the sextic block "
                         "alone has C(M+5, 6) entries); choose a larger μ or raise max_modes.")
    lam = solution.eigenvalues[kept]
    if solution.regulator == "smooth":
        d = _smooth_d(jnp.log(jnp.asarray(mu)), (lam, solution.width))
    else:
        d = jnp.zeros(m)
    sizes = [math.comb(m + n - 1, n) for n in (2, 4, 6)]

    ix = [np.ix_(*(kept,) * n) for n in (2, 4, 6)]
    if point == "theory":
        # on the host: slicing saved tensors compiles nothing
        full = (np.asarray(solution.quadratic)[index][ix[0]] * mu,
                np.asarray(solution.quartic)[index][ix[1]] * mu**2,
                np.asarray(solution.sextic)[index][ix[2]] * mu**3)
        v0 = np.concatenate([from_full(t, n) for t, n in zip(full, (2, 4, 6))])
    else:
        v0 = np.zeros(sum(sizes))
    jac = np.asarray(_standardised_jacobian(v0, jnp.asarray(mu, jnp.float64),
                                            jnp.asarray(d, jnp.float64), m))
    # v (the index-sorted entries) are coordinates on the symmetric tensors: to_full copies v_j
    # into its whole orbit, so this Jacobian is the matrix of the linearised map itself
    if not np.all(np.isfinite(jac)):
        raise ValueError(f"`solution`: the linearised flow at μ = {mu:g} is not finite "
                         "(overflow of the standardised couplings).")
    evals = np.linalg.eigvals(jac)
    order = np.argsort(-evals.real)
    evals = evals[order]
    # Leading monomial degree of each eigen-direction. At the Gaussian point the map is block
    # upper-triangular (X → L → Q), so an eigenvector with θ = n/2 has its highest non-zero block
    # at degree n: the eigenvalue fixes the degree. At the theory point each eigenvalue is
    # continued from the nearest Gaussian one (valid while the O(1/N) shifts are < 1/4:
    # `max_shift` below).
    degree = np.clip(2 * np.rint(evals.real), 2, 6).astype(int)
    max_shift = float(np.max(np.abs(evals.real - degree / 2)))
    if max_shift >= 0.25:
        raise ValueError(f"the linearised flow at the theory point is not perturbative (an "
                         f"eigenvalue is {max_shift:.3f} from n/2); the degrees are ambiguous.")
    theta = evals.real
    classes = tuple("relevant" if t > tol else "irrelevant" if t < -tol else "marginal"
                    for t in theta)
    return WilsonianRelevance(mu=mu, kept=tuple(int(k) for k in kept), theta=theta,
                              degree=degree, classes=classes, matrix=jac, point=point)

