# title: Pitfall: backward twice through one graph
# description: The first backward frees the saved tensors; the second cannot run.
import torch

x = torch.tensor([1.0, 2.0], requires_grad=True)
y = (x * x).sum()
y.backward()
y.backward()
