"""
===================================
AnalogMatrix for users of aihwkit
===================================

IBM's Analog Hardware Acceleration Kit (aihwkit; Le Gallo et al., APL Machine
Learning 1, 041102, 2023) simulates analog tiles inside PyTorch layers.
:class:`~analogkernels.analog.AnalogMatrix` is the same kind of simulation for one
matrix, with HERMES's datapath (integer conductance codes, exact accumulation, ADC)
and reproducible reads. Where a name is aihwkit's, its meaning and unit are aihwkit's;
where the meaning differs, so does the name.

.. list-table:: aihwkit names and their counterparts here
   :header-rows: 1
   :widths: 45 55

   * - aihwkit
     - analogkernels (:class:`~analogkernels.analog.CrossbarConfig` fields unless noted)
   * - ``InferenceRPUConfig()`` (the whole hardware description)
     - ``CrossbarConfig.hermes()``; ``CrossbarConfig.ideal()`` for a perfect periphery
   * - ``AnalogLinear(..., rpu_config=)``, ``convert_to_analog(model, rpu_config)``
     - ``AnalogMatrix.program(W, config, seed=)``;
       :func:`analogkernels.torch.convert_to_analog` for torch models
   * - ``program_analog_weights()``
     - ``AnalogMatrix.program`` (programming noise, drift exponents)
   * - ``drift_analog_weights(t_inference)``
     - ``AnalogMatrix.drift_to(t_inference)``; ``matmul(X, t_inference=)``; the
       estimators' ``t_inference=``
   * - ``PCMLikeNoiseModel(g_max=25)`` (``inference/noise/pcm.py``)
     - ``noise_model="pcm", devices_per_polarity=1, g_max=25.0``
   * - ``HermesNoiseModel(num_devices=2)`` (``inference/noise/hermes.py``)
     - ``noise_model="hermes", devices_per_polarity=2`` (the default)
   * - noise model ``prog_noise_scale``, ``drift_scale``, ``read_noise_scale``,
       ``t_0``, ``t_read``
     - ``prog_noise_scale``, ``drift_scale``, ``read_noise_scale``, ``t0``, ``t_read``
   * - ``GlobalDriftCompensation`` / ``PerColumnDriftCompensation``
       (``inference/compensation/drift.py``)
     - ``drift_compensation="global"`` / ``"column"``
   * - ``IOParameters.out_noise`` (default 0.06)
     - ``out_noise``: the same meaning, σ of the output noise in normalised output
       units (default 0.096)
   * - ``IOParameters.out_bound`` (default 12)
     - ``out_bound``, the same unit (default 24, the HERMES ADC range)
   * - ``IOParameters.out_res = 1/(2**n - 2)`` (n-bit ADC; ``-1``: none)
     - ``output_bits = n`` (``0``: no ADC)
   * - ``IOParameters.inp_res = 1/(2**n - 2)`` (default 1/126, 7 bits)
     - ``input_bits = n`` (default 8: codes −127..127)
   * - ``IOParameters.inp_bound = 1`` with ``noise_management=ABS_MAX``
     - ``input_range=None`` (each input vector scaled by its absolute maximum, per tile)
   * - ``noise_management=NONE`` with a fixed input bound
     - ``input_range=`` that bound (inputs beyond it clip)
   * - ``IOParameters.w_noise``, ``w_noise_type=WeightNoiseType.PCM_READ``
     - ``w_noise`` (always the ``PCM_READ`` form, drawn at every read)
   * - ``IOParameters.ir_drop``, ``ir_drop_g_ratio``
     - ``ir_drop``, ``ir_drop_g_ratio``
   * - ``IOParameters.bound_management``
     - not modelled: outputs saturate at ``±out_bound``
   * - ``MappingParameter.max_input_size``, ``max_output_size`` (512)
     - ``tile_cols``, ``tile_rows`` (256, as HERMES)
   * - ``MappingParameter.weight_scaling_columnwise``
     - ``weight_scaling="column"`` (``"tile"``: one ``w_max`` per tile)
   * - a forward pass draws new output and weight-read noise
     - every ``matmul`` is a fresh read; ``matmul(X, seed=)`` pins one

The normalised output unit is aihwkit's: a weight at the tile's maximum times an input
at full scale gives 1.
"""

# %%
# ``out_noise`` means what it means in aihwkit
# --------------------------------------------
# Program one 256 × 256 matrix twice with the noise-free periphery, once with
# ``out_noise=0.06``, read the same inputs and divide the difference by the
# normalisation (input scale × ``w_max``): its standard deviation is ``out_noise``.
import matplotlib.pyplot as plt
import numpy as np

from analogkernels.analog import AnalogMatrix, CrossbarConfig

rng = np.random.default_rng(0)
W = rng.uniform(-1, 1, size=(256, 256))
X = rng.uniform(-1, 1, size=(1000, 256))
exact = X @ W.T

quiet = AnalogMatrix.program(W, CrossbarConfig.ideal(), seed=1)
noisy = AnalogMatrix.program(W, CrossbarConfig.ideal(out_noise=0.06), seed=1)
unit = np.abs(X).max(axis=1, keepdims=True) * np.abs(W).max()
sigma = np.std((noisy.matmul(X) - quiet.matmul(X)) / unit)
print(f"out_noise=0.06 -> measured σ in normalised output units: {sigma:.4f}")

# %%
# MVM error after programming and drift
# -------------------------------------
# The relative error ``‖y − Wx‖ / ‖Wx‖`` of a dense 256 × 256 MVM at several read
# times, for the HERMES preset and for aihwkit's default PCM model on one device per
# polarity. ``effective_weights`` gives the weights the devices realise at that time
# (programming noise, drift, 1/f noise, drift compensation): the error of ``X @ Ŵ.T``
# is the part fixed by the device state, the rest is per-read noise.
configs = {
    "HERMES (HermesNoiseModel, 2 devices)": CrossbarConfig.hermes(),
    "aihwkit PCMLikeNoiseModel, 1 device, 25 µS": CrossbarConfig.hermes(
        noise_model="pcm", devices_per_polarity=1, g_max=25.0
    ),
}
times = np.array([1.0, 60.0, 3600.0, 86400.0, 30 * 86400.0, 365 * 86400.0])
fig, ax = plt.subplots(figsize=(6.4, 3.8), layout="constrained")
for (name, config), colour in zip(configs.items(), ["tab:blue", "tab:orange"], strict=True):
    chip = AnalogMatrix.program(W, config, seed=2)
    total, state = [], []
    for t in times:
        y = chip.matmul(X, t_inference=t)  # drifts the devices to t, then reads
        W_eff = chip.effective_weights()
        total.append(np.linalg.norm(y - exact) / np.linalg.norm(exact))
        state.append(np.linalg.norm(X @ W_eff.T - exact) / np.linalg.norm(exact))
    ax.plot(times, 100 * np.array(total), "o-", color=colour, label=f"{name}: read")
    ax.plot(times, 100 * np.array(state), "s--", color=colour, label="  device state only")
    print(f"{name}: {100 * total[0]:.1f} % after 1 s, {100 * total[-1]:.1f} % after a year")
ax.set_xscale("log")
ax.set_xlabel("t_inference (s after programming)")
ax.set_ylabel("relative MVM error (%)")
ax.set_title("Dense 256 × 256 MVM, global drift compensation")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
plt.show()

# %%
# Drift compensation restores the mean gain, but the drift exponents differ from device
# to device, so the error grows with time. The HERMES-fitted model drifts faster than
# aihwkit's generic PCM model (its documentation notes that with two devices it assumes
# both hold the same conductance, so it overestimates the drift measured on chip).

# %%
# Weights as aihwkit reports them
# -------------------------------
# The programmed weights' error relative to the largest weight, ``std(W − Ŵ)/w_max``,
# is the weight error Le Gallo et al. report for HERMES (Nature Electronics 6, 2023).
chip = AnalogMatrix.program(W, CrossbarConfig.hermes(), seed=2)
for t in (0.0, 3600.0):
    W_eff = chip.effective_weights(t)
    print(f"t = {t:6.0f} s: weight error {np.std(W - W_eff) / np.abs(W).max():.4f}")
