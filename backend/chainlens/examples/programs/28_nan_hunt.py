# title: Hunting a NaN with detect_anomaly
# description: Anomaly mode stops backward at the first node that returns NaN; the graph shows where it began.
import torch

x = torch.zeros(3, requires_grad=True)
with torch.autograd.detect_anomaly():
    r = torch.sqrt((x**2).sum())  # the norm, written by hand: its slope at 0 is 1/0
    loss = r * 2
    loss.backward()
