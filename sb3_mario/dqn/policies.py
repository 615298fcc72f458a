"""Dueling Q-network policy for SB3's ``DQN``, with the notebook's CNN as default feature extractor."""

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, create_mlp
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn

# Precisions the dueling policies compute their forward passes in.
PRECISIONS: dict[str, th.dtype | None] = {"fp32": None, "bf16": th.bfloat16}


def _check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not valid; valid choices: {', '.join(PRECISIONS)}")
    return precision


class MarioCNN(BaseFeaturesExtractor):
    """
    The notebook's convolution stack: conv 32x8 stride 4, conv 64x4 stride 2, conv 64x3 stride 1,
    each followed by BatchNorm (optional) and ReLU, then flattened (4,096 features for 4x96x96).

    :param observation_space: Channel-first image space, e.g. ``(4, 96, 96)``.
    :param batch_norm: Whether to put a ``BatchNorm2d`` after each convolution, as the notebook does.
    """

    def __init__(self, observation_space: spaces.Box, batch_norm: bool = True) -> None:
        n_input_channels = observation_space.shape[0]
        layers: list[nn.Module] = []
        for in_channels, out_channels, kernel_size, stride in (
            (n_input_channels, 32, 8, 4),
            (32, 64, 4, 2),
            (64, 64, 3, 1),
        ):
            layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, stride=stride))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU())
        layers.append(nn.Flatten())
        cnn = nn.Sequential(*layers)
        with th.no_grad():
            n_flatten = cnn.eval()(th.zeros(1, *observation_space.shape)).shape[1]
        super().__init__(observation_space, features_dim=n_flatten)
        self.cnn = cnn.train()

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.cnn(observations)


class DuelingQNetwork(QNetwork):
    """
    Dueling Q-network: ``Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a')`` (Wang et al., 2016).

    Subtracting the mean advantage makes the split identifiable: adding a constant to every
    advantage of a state leaves Q unchanged. The advantage stream is ``QNetwork``'s own ``q_net``
    MLP (features -> ``net_arch`` -> one output per action); the value stream is a twin MLP with a
    single output.

    :param observation_space: Observation space
    :param action_space: Action space
    :param features_extractor: Network turning observations into features
    :param features_dim: Number of features
    :param net_arch: Hidden layer sizes of each stream (the notebook: ``[256]``)
    :param activation_fn: Activation function
    :param normalize_images: Whether to divide image observations by 255
    :param precision: ``"fp32"``, or ``"bf16"``: the forward pass (and so its backward pass) runs
        under ``torch.autocast`` in bfloat16 on CPU or CUDA (faster on CPUs with AVX-512 BF16: docs/benchmarks.md).
        Weights, optimizer state and the returned Q-values stay float32, so SB3's DQN computes its
        targets and loss unchanged.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        precision: str = "fp32",
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            features_extractor=features_extractor,
            features_dim=features_dim,
            net_arch=net_arch,
            activation_fn=activation_fn,
            normalize_images=normalize_images,
        )
        self.value_net = nn.Sequential(*create_mlp(self.features_dim, 1, self.net_arch, self.activation_fn))
        self.precision = _check_precision(precision)

    def extract_features(self, obs: PyTorchObs, features_extractor: BaseFeaturesExtractor) -> th.Tensor:
        if self.normalize_images and isinstance(obs, th.Tensor) and obs.dtype == th.uint8:
            # SB3's preprocess_obs divides out of place (obs.float() / 255): on CPU the second fresh
            # batch-sized tensor costs about as much as the convolutions (docs/benchmarks.md).
            # float() of a uint8 tensor is a copy, so dividing it in place is safe.
            return features_extractor(obs.float().div_(255.0))
        return super().extract_features(obs, features_extractor)

    def value_and_advantages(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor]:
        """
        The two streams before they are combined.

        :param obs: Observation batch
        :return: State values ``(batch, 1)`` and advantages ``(batch, n_actions)``
        """
        features = self.extract_features(obs, self.features_extractor)
        return self.value_net(features), self.q_net(features)

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        autocast_dtype = PRECISIONS[self.precision]
        with th.autocast(self.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            values, advantages = self.value_and_advantages(obs)
            q_values = values + advantages - advantages.mean(dim=1, keepdim=True)
        return q_values.float()

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "precision": self.precision}


class DuelingDQNPolicy(DQNPolicy):
    """
    ``DQNPolicy`` whose online and target networks are :class:`DuelingQNetwork`.

    SB3's ``DQNPolicy`` arguments, plus ``precision`` (``"fp32"`` or ``"bf16"``, see
    :class:`DuelingQNetwork`), e.g. ``policy_kwargs=dict(precision="bf16")``.
    """

    def __init__(self, *args: Any, precision: str = "fp32", **kwargs: Any) -> None:
        # Set before DQNPolicy.__init__, which builds the networks through make_q_net.
        self.precision = _check_precision(precision)
        super().__init__(*args, **kwargs)

    def make_q_net(self) -> DuelingQNetwork:
        # Separate feature extractors for the online and target networks, as DQNPolicy does.
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return DuelingQNetwork(**net_args, precision=self.precision).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "precision": self.precision}


class DuelingCnnPolicy(DuelingDQNPolicy):
    """
    The notebook's network: :class:`MarioCNN` (BatchNorm on) and two 256-unit streams.

    :param observation_space: Observation space
    :param action_space: Action space
    :param lr_schedule: Learning rate schedule (could be constant)
    :param net_arch: Hidden layer sizes of each stream
    :param activation_fn: Activation function
    :param features_extractor_class: Features extractor to use
    :param features_extractor_kwargs: Keyword arguments for the features extractor, e.g.
        ``dict(batch_norm=False)``
    :param normalize_images: Whether to divide images by 255
    :param optimizer_class: The optimizer to use, ``th.optim.Adam`` by default
    :param optimizer_kwargs: Additional keyword arguments, excluding the learning rate, to pass to the optimizer
    :param precision: ``"fp32"`` or ``"bf16"`` forward passes (see :class:`DuelingQNetwork`)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = MarioCNN,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        precision: str = "fp32",
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            [256] if net_arch is None else net_arch,
            activation_fn,
            features_extractor_class,
            features_extractor_kwargs,
            normalize_images,
            optimizer_class,
            optimizer_kwargs,
            precision=precision,
        )


def register_policy_aliases() -> None:
    """Let SB3's ``DQN`` accept ``"DuelingCnnPolicy"`` and ``"DuelingMlpPolicy"`` by name."""
    from stable_baselines3 import DQN

    DQN.policy_aliases.setdefault("DuelingCnnPolicy", DuelingCnnPolicy)
    DQN.policy_aliases.setdefault("DuelingMlpPolicy", DuelingDQNPolicy)
