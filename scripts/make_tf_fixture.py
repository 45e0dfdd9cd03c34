"""Make tests/fixtures/srn_tf/: SRN-DeblurNet checkpoints written by TensorFlow itself, and TensorFlow's output.

Run it with a Python that has TensorFlow and tf_slim, kept apart from the project's virtual environment:

    python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu tf_slim
    /tmp/tfenv/bin/python scripts/make_tf_fixture.py

The graph is the authors' `generator` (jiangsutx/SRN-Deblur, models/model.py and util/): the same scopes, variable
names and operations (slim.conv2d with ReLU, ResnetBlock, slim.conv2d_transpose, tf.image.resize_images, the
BasicConvLSTMCell), at a tiny width so the checkpoints weigh a few tens of kB. For each model ("color": three
channels, no LSTM; "lstm": one channel with the ConvLSTM) it writes `<model>/SRN-DeblurNet.model-523000.index` and
`.data-00000-of-00001`, the input it fed (`input.npy`, N x H x W x C in [0, 1]) and the three scales' outputs
(`output_<scale>.npy`, coarsest first). Variables are drawn from fixed seeds, biases included, so every tensor
reaches the output.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_slim as slim

tf1 = tf.compat.v1
LEVELS, SCALE, NUM_RES = 3, 0.5, 3
HEIGHT, WIDTH = 32, 48
STEP = 523000


def resnet_block(x, dim: int, ksize: int, scope: str):
    with tf1.variable_scope(scope):
        net = slim.conv2d(x, dim, [ksize, ksize], scope="conv1")
        net = slim.conv2d(net, dim, [ksize, ksize], activation_fn=None, scope="conv2")
        return net + x


def conv_lstm(inputs, state, features: int, forget_bias: float = 1.0):
    """BasicConvLSTMCell.__call__ (state packed as [c, h] along channels), in scope convLSTM."""
    with tf1.variable_scope("convLSTM"):
        c, h = tf.split(state, 2, 3)
        with slim.arg_scope(
            [slim.conv2d],
            stride=1,
            padding="SAME",
            activation_fn=None,
            weights_initializer=tf1.truncated_normal_initializer(mean=0.0, stddev=1.0e-3),
            biases_initializer=tf1.constant_initializer(0.0),
        ):
            concat = slim.conv2d(tf.concat([inputs, h], 3), features * 4, [3, 3], scope="LSTM_conv")
        i, j, f, o = tf.split(concat, 4, 3)
        new_c = c * tf.nn.sigmoid(f + forget_bias) + tf.nn.sigmoid(i) * tf.nn.tanh(j)
        new_h = tf.nn.tanh(new_c) * tf.nn.sigmoid(o)
        return new_h, tf.concat([new_c, new_h], 3)


def generator(inputs, width: int, lstm: bool, channels: int):
    """The authors' DEBLUR.generator with `width` in place of 32 (so 2x and 4x in place of 64 and 128)."""
    n, h, w, _ = inputs.get_shape().as_list()
    widths = (width, width * 2, width * 4)
    if lstm:
        rnn_state = tf.zeros([n, h // 4, w // 4, widths[2] * 2])
    x_unwrap = []
    with (
        tf1.variable_scope("g_net"),
        slim.arg_scope(
            [slim.conv2d, slim.conv2d_transpose],
            activation_fn=tf.nn.relu,
            padding="SAME",
            normalizer_fn=None,
            weights_initializer=tf1.glorot_uniform_initializer(),
            biases_initializer=tf1.constant_initializer(0.0),
        ),
    ):
        inp_pred = inputs
        for i in range(LEVELS):
            scale = SCALE ** (LEVELS - i - 1)
            hi, wi = round(h * scale), round(w * scale)
            inp_blur = tf1.image.resize_images(inputs, [hi, wi], method=0)
            inp_pred = tf.stop_gradient(tf1.image.resize_images(inp_pred, [hi, wi], method=0))
            inp_all = tf.concat([inp_blur, inp_pred], axis=3, name="inp")
            if lstm:
                rnn_state = tf1.image.resize_images(rnn_state, [hi // 4, wi // 4], method=0)
            x = inp_all
            skips = []
            for stage, dim in enumerate(widths, start=1):
                x = slim.conv2d(x, dim, [5, 5], stride=1 if stage == 1 else 2, scope=f"enc{stage}_1")
                for block in range(2, NUM_RES + 2):
                    x = resnet_block(x, dim, 5, scope=f"enc{stage}_{block}")
                skips.append(x)
            if lstm:
                x, rnn_state = conv_lstm(x, rnn_state, widths[2])
            for stage, dim in zip((3, 2, 1), widths[::-1]):
                for block in range(NUM_RES, 0, -1):
                    x = resnet_block(x, dim, 5, scope=f"dec{stage}_{block}")
                if stage > 1:
                    up = slim.conv2d_transpose(
                        x, widths[stage - 2], [4, 4], stride=2, scope=f"dec{stage - 1}_{NUM_RES + 1}"
                    )
                    x = up + skips[stage - 2]
            inp_pred = slim.conv2d(x, channels, [5, 5], activation_fn=None, scope="dec1_0")
            x_unwrap.append(inp_pred)
            if i == 0:
                tf1.get_variable_scope().reuse_variables()
    return x_unwrap


def make(folder: Path, model: str, width: int, seed: int) -> None:
    channels = 3 if model == "color" else 1
    lstm = model == "lstm"
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(seed)
        inputs = tf1.placeholder(tf.float32, [1, HEIGHT, WIDTH, channels])
        outputs = generator(inputs, width, lstm, channels)
        global_step = tf1.Variable(STEP, dtype=tf.int32, trainable=False, name="global_step")
        rng = np.random.default_rng(seed)
        with tf1.Session(graph=graph) as session:
            session.run(tf1.global_variables_initializer())
            for variable in tf1.trainable_variables():
                # Perturb every variable (biases start at zero, the LSTM's weights near zero) so each one shows.
                shape = variable.shape.as_list()
                fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
                spread = 1.0 / np.sqrt(fan_in) if len(shape) > 1 else 0.1
                variable.load(rng.uniform(-spread, spread, shape).astype(np.float32), session)
            image = rng.uniform(0, 1, [1, HEIGHT, WIDTH, channels]).astype(np.float32)
            scales = session.run(outputs, feed_dict={inputs: image})
            folder.mkdir(parents=True, exist_ok=True)
            saver = tf1.train.Saver(tf1.global_variables())
            saver.save(session, str(folder / "SRN-DeblurNet.model"), global_step=global_step, write_meta_graph=False)
    (folder / "checkpoint").unlink(missing_ok=True)  # the Saver's bookkeeping, with this machine's paths
    np.save(folder / "input.npy", image)
    for index, scale in enumerate(scales):
        np.save(folder / f"output_{index}.npy", scale)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests/fixtures/srn_tf")
    parser.add_argument("--width", type=int, default=1, help="the first stage's channels (32 in the release)")
    args = parser.parse_args()
    for seed, model in enumerate(("color", "lstm")):
        make(args.out / model, model, args.width, seed)
        print(f"wrote {args.out / model}")


if __name__ == "__main__":
    main()
