"""PyTorch twin of Strata's GPT, shared by tests/reference and perf/.

It must compute exactly Strata's function: pre-LayerNorm decoder, learned
positions, tied wte/head, GELU (tanh), LayerNorm eps 1e-5. Parameter names
(model.named_parameters()) are the names used in Strata's dumps, e.g.
"wte", "h.0.attn.c_attn.weight", "ln_f.bias".
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# "fp32", or "bf16": every matmul (forward and backward) rounds both operands to bfloat16 and accumulates in fp32,
# which is what Strata's train.precision = "bf16" does. Everything else stays fp32.
PRECISION = "fp32"
# None, or the masks of Strata's dropout for the current step (perf/dropout_masks.Masks): the twin then drops at
# Strata's sites with Strata's masks ("dropout.embedding", "dropout.attention.<l>", "dropout.attn_residual.<l>",
# "dropout.mlp_residual.<l>").
DROPOUT = None


def _drop(site, x):
    return x if DROPOUT is None else DROPOUT.drop(site, x)


class _Bf16Matmul(torch.autograd.Function):
    """a @ b with both operands rounded to bf16, fp32 result; the backward GEMMs round theirs too."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return _rounded(a) @ _rounded(b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        g = _rounded(g)
        return g @ _rounded(b).transpose(-2, -1), _rounded(a).transpose(-2, -1) @ g


def _rounded(t):
    return t.to(torch.bfloat16).to(t.dtype) if t.dtype == torch.float32 else t


def mm(a, b):
    """The one matmul of the twin: plain, or bf16-emulating under PRECISION = "bf16"."""
    if PRECISION != "bf16":
        return a @ b
    if b.dim() == 2 and a.dim() > 2:  # [..., K] @ [K, N]: one GEMM over the flattened rows (b's gradient summed)
        return _Bf16Matmul.apply(a.reshape(-1, a.shape[-1]), b).reshape(*a.shape[:-1], b.shape[-1])
    return _Bf16Matmul.apply(a, b)


class Linear(nn.Linear):
    """nn.Linear (the fused fp32 kernel, as benchmarked), or its bf16-emulating form."""

    def forward(self, x):
        return mm(x, self.weight.t()) + self.bias if PRECISION == "bf16" else super().forward(x)


class Attention(nn.Module):
    def __init__(self, d_model, n_head, index=0, d_head=0):
        super().__init__()
        self.index = index
        assert d_head > 0 or d_model % n_head == 0, "d_model must be divisible by n_head (or give d_head)"
        self.n_head = n_head
        self.d_head = d_head or d_model // n_head
        width = n_head * self.d_head  # the attention's width (d_model unless d_head is set)
        self.c_attn = Linear(d_model, 3 * width)
        self.c_proj = Linear(width, d_model)

    def forward(self, x):
        B, T, C = x.shape
        H, D = self.n_head, self.d_head
        q, k, v = self.c_attn(x).split(H * D, dim=2)
        # Head h owns columns h*D..(h+1)*D-1 of q, k and v.
        q = q.view(B, T, H, D).transpose(1, 2)
        k = k.view(B, T, H, D).transpose(1, 2)
        v = v.view(B, T, H, D).transpose(1, 2)
        att = mm(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(D))
        # torch 1.13 has no scaled_dot_product_attention: mask by hand.
        future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        att = att.masked_fill(future, float("-inf")).softmax(dim=-1)
        att = _drop(f"dropout.attention.{self.index}", att)
        y = mm(att, v).transpose(1, 2).reshape(B, T, H * D)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, d_model, d_mlp=0):
        super().__init__()
        self.c_fc = Linear(d_model, d_mlp or 4 * d_model)
        self.c_proj = Linear(d_mlp or 4 * d_model, d_model)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, d_model, n_head, index=0, d_head=0, d_mlp=0):
        super().__init__()
        self.index = index
        self.ln_1 = nn.LayerNorm(d_model, eps=1e-5)
        self.attn = Attention(d_model, n_head, index, d_head)
        self.ln_2 = nn.LayerNorm(d_model, eps=1e-5)
        self.mlp = MLP(d_model, d_mlp)

    def forward(self, x):
        x = x + _drop(f"dropout.attn_residual.{self.index}", self.attn(self.ln_1(x)))
        return x + _drop(f"dropout.mlp_residual.{self.index}", self.mlp(self.ln_2(x)))


class GPT(nn.Module):
    def __init__(self, n_layer, n_head, d_model, vocab_size, seq_len, d_head=0, d_mlp=0):
        super().__init__()
        self.seq_len = seq_len
        # Bare Parameters (not nn.Embedding) so the names are "wte"/"wpe".
        self.wte = nn.Parameter(torch.empty(vocab_size, d_model))
        self.wpe = nn.Parameter(torch.empty(seq_len, d_model))
        self.h = nn.ModuleList(Block(d_model, n_head, i, d_head, d_mlp) for i in range(n_layer))
        self.ln_f = nn.LayerNorm(d_model, eps=1e-5)
        self.init_weights()

    def init_weights(self, std=0.02, perturb=False, generator=None):
        """normal(0, std) matrices; biases/LN at 0/1, or random if perturb
        (so a reference check exercises every parameter)."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                ln_weight = ".ln_" in "." + name and name.endswith("weight")
                base = 1.0 if ln_weight else 0.0
                if p.dim() >= 2:
                    p.normal_(0.0, std, generator=generator)
                elif perturb:
                    p.normal_(base, 0.1, generator=generator)
                else:
                    p.fill_(base)

    def forward(self, x):
        T = x.shape[1]
        h = _drop("dropout.embedding", self.wte[x] + self.wpe[:T])
        for block in self.h:
            h = block(h)
        return mm(self.ln_f(h), self.wte.t())

    def loss(self, x, y):
        logits = self(x)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def n_params(model, non_embedding=True):
    skip = {"wte", "wpe"} if non_embedding else set()
    return sum(p.numel() for n, p in model.named_parameters() if n not in skip)


def make_adamw(model, lr, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1):
    """AdamW with weight decay on every 2-D tensor, none on 1-D ones."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps)


def distillation_loss(logits, targets, teacher, temperature, alpha, label_smoothing=0.0):
    """Strata's [distill] loss on logits [rows, classes]: (1 - alpha) cross-entropy against targets [rows] plus
    alpha T^2 KL(softmax(teacher / T) || softmax(logits / T)), averaged over the rows."""
    hard = F.cross_entropy(logits, targets, label_smoothing=label_smoothing)
    soft = F.kl_div(torch.log_softmax(logits / temperature, dim=1), torch.softmax(teacher / temperature, dim=1),
                    reduction="batchmean")
    return (1 - alpha) * hard + alpha * temperature ** 2 * soft


def train_step(model, opt, x, y, grad_clip, loss_of=None):
    """One full step; returns the loss before the update. loss_of(logits) replaces model.loss (e.g. distillation)."""
    opt.zero_grad(set_to_none=True)
    loss = model.loss(x, y) if loss_of is None else loss_of(model(x))
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    return loss.detach()


def load_strata_weights(path):
    """Builds the model from a Strata weights file (docs/weights-format.md): config from the root
    attributes, every tensor by name. Raises KeyError naming a missing tensor."""
    import h5py  # only needed here
    with h5py.File(path, "r") as f:
        cfg = {k: int(f.attrs[k]) for k in ("n_layer", "n_head", "d_model", "vocab_size", "seq_len")}
        cfg.update({k: int(f.attrs[k]) for k in ("d_head", "d_mlp") if k in f.attrs})  # absent: the defaults
        model = GPT(**cfg)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name not in f:
                    raise KeyError(f"{path}: tensor '{name}' is missing")
                p.copy_(torch.from_numpy(f[name][...]))
    return model, cfg
