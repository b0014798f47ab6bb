# title: Pitfall: an in-place op on a leaf
# description: w.add_(1) on a leaf that requires grad is refused by autograd.
import torch

w = torch.tensor([1.0, 2.0], requires_grad=True)
w.add_(1)
