"""PyTorch twins of Strata's classifiers (model.kind = "cnn" and "lstm"), built from the same [model] config
fields and holding parameters under the same names, so a Strata checkpoint, weights file or reference dump loads
into them by name. Used by tests/reference/classifier_reference.py and perf/bench_classifiers.py."""
import torch
import torch.nn as nn
import torch.nn.functional as F

# Strata's train.label_smoothing (the twins' training loss; 0: the plain cross-entropy).
LABEL_SMOOTHING = 0.0
# None, or the masks of Strata's dropout for the current step (perf/dropout_masks.Masks): the twins then drop at
# Strata's sites with Strata's masks (cnn "dropout.features" and "dropout.hidden"; lstm "dropout.layer.<l>" and
# "dropout.hidden").
DROPOUT = None


def _drop(site, x):
    return x if DROPOUT is None else DROPOUT.drop(site, x)


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
        x = _drop("dropout.features", self.features(x))
        if hasattr(self, "hidden"):
            x = _drop("dropout.hidden", self.act(self.hidden(x)))
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

    def recurrent(self, x):  # [B, T, F] -> every step's states of the last layer [B, T, H]
        if DROPOUT is None:
            return self.lstm(x)[0]
        # Layer by layer (the same parameters), each layer's states dropped before the next layer reads them.
        lstm = isinstance(self.lstm, nn.LSTM)
        for layer in range(self.lstm.num_layers):
            weights = [getattr(self.lstm, f"{w}_l{layer}") for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            h0 = x.new_zeros(1, x.shape[0], self.lstm.hidden_size)
            if lstm:
                x = torch._VF.lstm(x, (h0, h0), weights, True, 1, 0.0, self.training, False, True)[0]
            else:
                x = torch._VF.gru(x, h0, weights, True, 1, 0.0, self.training, False, True)[0]
            x = _drop(f"dropout.layer.{layer}", x)
        return x

    def forward(self, x):  # x [B, T, F] -> logits [B*T, classes] (per step) or [B, classes]
        out = self.recurrent(x)
        feats = out.reshape(-1, out.shape[-1]) if self.per_step else out[:, -1, :]
        if hasattr(self, "hidden"):
            feats = _drop("dropout.hidden", self.act(self.hidden(feats)))
        return self.head(feats)

    def loss(self, x, y):
        return F.cross_entropy(self(x), y.reshape(-1), label_smoothing=LABEL_SMOOTHING)


def build(cfg):
    """The twin of a resolved [model] table (a dict of its fields)."""
    return CnnTwin(cfg) if cfg["kind"] == "cnn" else RecurrentTwin(cfg)
