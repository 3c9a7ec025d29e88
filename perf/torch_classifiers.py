"""PyTorch twins of Strata's classifiers (model.kind = "cnn" and "lstm"), built from the same [model] config
fields and holding parameters under the same names, so a Strata checkpoint, weights file or reference dump loads
into them by name. Used by tests/reference/classifier_reference.py and perf/bench_classifiers.py."""
import torch
import torch.nn as nn
import torch.nn.functional as F

# Strata's train.label_smoothing (the twins' training loss; 0: the plain cross-entropy).
LABEL_SMOOTHING = 0.0


def _activation(name):
    return nn.GELU(approximate="tanh") if name == "gelu" else nn.ReLU()


class Block(nn.Module):
    """conv -> GroupNorm -> activation -> pooling, as one Strata conv block."""

    def __init__(self, cfg, c_in, c_out):
        super().__init__()
        k = cfg["kernel_size"]
        pad = cfg["padding"] if cfg["padding"] >= 0 else k // 2
        self.conv = nn.Conv2d(c_in, c_out, k, stride=cfg["conv_stride"], padding=pad)
        if cfg["norm"] == "group":
            self.norm = nn.GroupNorm(cfg["norm_groups"], c_out, eps=1e-5)
        self.act = _activation(cfg["activation"])
        p = cfg["pool_size"]
        self.pool = {"max": nn.MaxPool2d(p, p), "avg": nn.AvgPool2d(p, p), "none": nn.Identity()}[cfg["pool"]]

    def forward(self, x):
        x = self.conv(x)
        if hasattr(self, "norm"):
            x = self.norm(x)
        return self.pool(self.act(x))


class CnnTwin(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c, h, w = cfg["input_shape"]
        blocks = []
        for out in cfg["channels"]:
            blocks.append(Block(cfg, c, out))
            c = out
        self.blocks = nn.ModuleList(blocks)
        with torch.no_grad():
            flat = self.features(torch.zeros(1, *cfg["input_shape"])).shape[1]
        self.act = _activation(cfg["activation"])
        if cfg.get("hidden", 0) > 0:
            self.hidden = nn.Linear(flat, cfg["hidden"])
            flat = cfg["hidden"]
        self.head = nn.Linear(flat, cfg["num_classes"])

    def features(self, x):
        for b in self.blocks:
            x = b(x)
        return x.flatten(1)

    def forward(self, x):  # x [B, C, H, W] -> logits [B, classes]
        x = self.features(x)
        if hasattr(self, "hidden"):
            x = self.act(self.hidden(x))
        return self.head(x)

    def loss(self, x, y):
        return F.cross_entropy(self(x), y.reshape(-1), label_smoothing=LABEL_SMOOTHING)


class RecurrentTwin(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        steps, features = cfg["input_shape"]
        rnn = nn.GRU if cfg["cell"] == "gru" else nn.LSTM
        self.lstm = rnn(features, cfg["hidden_size"], num_layers=cfg["n_layer"], batch_first=True)
        self.per_step = cfg["labels"] == "step"
        self.act = _activation(cfg["activation"])
        width = cfg["hidden_size"]
        if cfg.get("hidden", 0) > 0:
            self.hidden = nn.Linear(width, cfg["hidden"])
            width = cfg["hidden"]
        self.head = nn.Linear(width, cfg["num_classes"])

    def forward(self, x):  # x [B, T, F] -> logits [B*T, classes] (per step) or [B, classes]
        out, _ = self.lstm(x)
        feats = out.reshape(-1, out.shape[-1]) if self.per_step else out[:, -1, :]
        if hasattr(self, "hidden"):
            feats = self.act(self.hidden(feats))
        return self.head(feats)

    def loss(self, x, y):
        return F.cross_entropy(self(x), y.reshape(-1), label_smoothing=LABEL_SMOOTHING)


def build(cfg):
    """The twin of a resolved [model] table (a dict of its fields)."""
    return CnnTwin(cfg) if cfg["kind"] == "cnn" else RecurrentTwin(cfg)
