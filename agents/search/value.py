"""A value head trained on returns: an alternative to rollouts for MCTS leaf values.

A small MLP reads an observation's per-candidate features (prior, similarity, weightage, log-probs,
votes, labels; flattened) plus the mask, and predicts the return-to-go from that state. It is fitted
on ``(observation, return-to-go)`` pairs collected by playing episodes with any agent
(:func:`collect_returns`), then plugged in as ``MCTS(value_fn=head.value_fn)``: a leaf then costs no
rollout. Use it in self-play, where returns include the verifier; in evaluation its targets must come
from episodes whose returns exclude the verifier, or it would smuggle the answer into the search.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def value_inputs(obs) -> np.ndarray:
    """The head's input for an observation: its flattened features and its mask, ``(D,)``."""
    return _inputs(obs)


def _inputs(obs) -> np.ndarray:
    return np.concatenate([obs["features"], obs["action_mask"].astype(np.float32)]).astype(np.float32)


def collect_returns(env, agent, prompts, *, options_key: str = "prompt") -> tuple[np.ndarray, np.ndarray]:
    """Play one episode per prompt with ``agent``; return inputs ``(N, D)`` and returns-to-go ``(N,)``."""
    xs, ys = [], []
    for prompt in prompts:
        obs, info = env.reset(options={options_key: prompt} if prompt is not None else None)
        agent.begin(env, obs, info)
        seen, rewards, done = [], [], False
        while not done:
            seen.append(_inputs(obs))
            obs, reward, terminated, truncated, info = env.step(agent.act(env, obs, info))
            rewards.append(float(reward))
            done = terminated or truncated
        to_go = np.cumsum(rewards[::-1])[::-1]
        xs += seen
        ys += to_go.tolist()
    return np.stack(xs), np.asarray(ys, dtype=np.float32)


class ValueHead(nn.Module):
    """MLP ``observation -> return-to-go``; :meth:`value_fn` plugs it into MCTS."""

    def __init__(self, input_dim: int, hidden: int = 64, seed: int = 0) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):  # seeded weights; the caller's random stream is untouched
            torch.manual_seed(seed)
            self.net = nn.Sequential(nn.Linear(input_dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, D) -> (B,)
        return self.net(x).squeeze(-1)

    def fit(self, inputs: np.ndarray, returns: np.ndarray, *, epochs: int = 200, lr: float = 1e-2) -> list[float]:
        """Full-batch regression on returns-to-go (mean squared error); returns the loss curve."""
        x, y = torch.from_numpy(inputs), torch.from_numpy(returns)
        optimizer = torch.optim.Adam(self.parameters(), lr=lr)
        losses = []
        for _ in range(epochs):
            loss = torch.mean((self(x) - y) ** 2)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        return losses

    def save(self, path) -> None:
        """Save the weights and the input size (a state dict with ``input_dim``/``hidden``)."""
        first = self.net[0]
        torch.save({"input_dim": first.in_features, "hidden": first.out_features, "state": self.state_dict()}, path)

    @classmethod
    def load(cls, path) -> ValueHead:
        """A head saved by :meth:`save`."""
        data = torch.load(path, weights_only=True)
        head = cls(data["input_dim"], data["hidden"])
        head.load_state_dict(data["state"])
        head.eval()
        return head

    @torch.no_grad()
    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Predicted returns-to-go of many inputs ``(N, D)`` -> ``(N,)``."""
        return self(torch.from_numpy(np.asarray(inputs, dtype=np.float32))).numpy()

    @torch.no_grad()
    def value_fn(self, env, state, obs) -> float:
        """``MCTS(value_fn=...)`` signature: the predicted return-to-go of ``obs``."""
        return float(self(torch.from_numpy(_inputs(obs))[None])[0])
