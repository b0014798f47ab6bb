# title: A custom ReLU autograd Function
# description: forward and backward written by hand; the engine runs MyReLUBackward, your code.
import torch


class MyReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return input.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        grad_input = grad_output.clone()
        grad_input[input < 0] = 0
        return grad_input


x = torch.tensor([-2.0, -0.5, 0.5, 2.0], requires_grad=True)
y = MyReLU.apply(x)
loss = (y * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum()
loss.backward()
print(x.grad)
