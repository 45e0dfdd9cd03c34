"""TensorFlow checkpoints read without TensorFlow, and SRN-DeblurNet's released checkpoints converted to this package.

A TensorFlow (V2 "tensor bundle") checkpoint is a prefix with two kinds of file beside it: `PREFIX.index`, an
SSTable (LevelDB's table format) that maps each variable's name to a `BundleEntryProto` (dtype, shape, shard,
offset, size, crc32c), its first entry (the empty key) being the `BundleHeaderProto`; and the shards
`PREFIX.data-00000-of-0000N`, where each tensor is its raw little-endian bytes. The few protobuf fields needed are
decoded here by hand, every block trailer's and every tensor's masked crc32c is checked, and anything off (a cut
index, a wrong magic number, a missing shard, a snappy-compressed block) is a `TensorBundleError`: one line, exit
status 2 on the command line.

SRN's variables (`g_net/enc1_1/weights`, `g_net/enc1_2/conv1/biases`, `g_net/convLSTM/LSTM_conv/weights`, ...)
map one to one onto `mprnet.models.srn`'s module names; convolutions go from TensorFlow's HWIO to PyTorch's OIHW,
transposed convolutions from HWOI to IOHW. The ConvLSTM needs nothing else: both pack the gates as input,
candidate, forget, output along the output channels and read `[input, hidden]` along the input channels.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import TensorBundleError

INDEX_SUFFIX = ".index"
_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48  # two block handles padded to 40 bytes, then the 8-byte magic number
_BLOCK_TRAILER_SIZE = 5  # compression type, then the masked crc32c of the block and that byte
_NO_COMPRESSION, _SNAPPY = 0, 1
#: TensorFlow's DataType enum -> numpy (little-endian); DT_STRING (7) is decoded separately.
_DTYPES = {
    1: "<f4",
    2: "<f8",
    3: "<i4",
    4: "u1",
    5: "<i2",
    6: "i1",
    9: "<i8",
    10: "?",
    17: "<u2",
    19: "<f2",
    22: "<u4",
    23: "<u8",
}
_DT_STRING = 7
_TF_SCOPE = "g_net/"


# --- crc32c (Castagnoli), vectorised over chunks so that megabytes cost milliseconds ------------------------------


def _crc_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint32)
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table[byte] = crc
    return table


_TABLE = _crc_table()
_CHUNKS = 1024


def _raw_crc(chunks: np.ndarray) -> np.ndarray:
    """The CRC register (started at 0, no final xor) of each row of a uint8 array, all rows at once."""
    crc = np.zeros(chunks.shape[0], dtype=np.uint32)
    for column in chunks.T:
        crc = _TABLE[(crc ^ column) & 0xFF] ^ (crc >> 8)
    return crc


def _zeros_operator(length: int) -> list[int]:
    """The register's linear map for `length` zero bytes fed in, as the images of its 32 bits."""
    step = [_feed_zero(1 << bit) for bit in range(32)]
    result = [1 << bit for bit in range(32)]
    while length:
        if length & 1:
            result = [_apply(step, value) for value in result]
        step = [_apply(step, value) for value in step]
        length >>= 1
    return result


def _feed_zero(register: int) -> int:
    return int(_TABLE[register & 0xFF]) ^ (register >> 8)


def _apply(operator: list[int], value: int) -> int:
    out = 0
    bit = 0
    while value:
        if value & 1:
            out ^= operator[bit]
        value >>= 1
        bit += 1
    return out


def crc32c(data: bytes | memoryview) -> int:
    """The crc32c of `data` (what TensorFlow and LevelDB store, before masking)."""
    array = np.frombuffer(data, dtype=np.uint8)
    length = len(array)
    rows = min(_CHUNKS, max(1, length // 64))
    width = length // rows
    register = 0
    if width:
        shift = _zeros_operator(width)
        for value in _raw_crc(array[: rows * width].reshape(rows, width)):
            register = _apply(shift, register) ^ int(value)
    for byte in array[rows * width :]:
        register = _feed_zero(register ^ int(byte))
    # The standard register starts at 0xFFFFFFFF: by linearity, that start fed `length` bytes, then the final xor.
    return register ^ _apply(_zeros_operator(length), 0xFFFFFFFF) ^ 0xFFFFFFFF


def masked_crc32c(data: bytes | memoryview) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# --- the SSTable (.index) ------------------------------------------------------------------------------------------


def _varint(buffer: bytes, position: int, where: str) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(buffer) or shift > 63:
            raise TensorBundleError(f"{where}: a number runs past its end (the file is cut or damaged)")
        byte = buffer[position]
        value |= (byte & 0x7F) << shift
        position += 1
        shift += 7
        if not byte & 0x80:
            return value, position


@dataclass(frozen=True)
class _Handle:
    offset: int
    size: int


def _handle(buffer: bytes, position: int, where: str) -> tuple[_Handle, int]:
    offset, position = _varint(buffer, position, where)
    size, position = _varint(buffer, position, where)
    return _Handle(offset, size), position


def _block(table: bytes, handle: _Handle, where: str) -> bytes:
    end = handle.offset + handle.size
    if end + _BLOCK_TRAILER_SIZE > len(table):
        raise TensorBundleError(f"{where}: a block runs past the end of the file (the index is cut)")
    contents = table[handle.offset : end]
    kind = table[end]
    (stored,) = struct.unpack_from("<I", table, end + 1)
    if masked_crc32c(table[handle.offset : end + 1]) != stored:
        raise TensorBundleError(f"{where}: a block's checksum does not match (the index is damaged)")
    if kind == _SNAPPY:
        raise TensorBundleError(
            f"{where}: the index is snappy-compressed, which this reader does not decode (TensorFlow writes "
            f"checkpoint indexes uncompressed; re-save it with tf.train.Saver)"
        )
    if kind != _NO_COMPRESSION:
        raise TensorBundleError(f"{where}: a block has unknown compression type {kind}")
    return contents


def _block_entries(block: bytes, where: str) -> list[tuple[bytes, bytes]]:
    """The (key, value) pairs of a block: each key shares a prefix with the previous one; restarts at the end."""
    if len(block) < 4:
        raise TensorBundleError(f"{where}: a block is too short to hold its restart points")
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 * (restarts + 1)
    if end < 0:
        raise TensorBundleError(f"{where}: a block's restart points run past its start")
    entries, key, position = [], b"", 0
    while position < end:
        shared, position = _varint(block, position, where)
        unshared, position = _varint(block, position, where)
        length, position = _varint(block, position, where)
        if shared > len(key) or position + unshared + length > end:
            raise TensorBundleError(f"{where}: a block entry runs past its block (the index is damaged)")
        key = key[:shared] + block[position : position + unshared]
        position += unshared
        entries.append((key, block[position : position + length]))
        position += length
    return entries


def read_table(path: Path) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of an SSTable file, in key order."""
    where = str(path)
    try:
        table = path.read_bytes()
    except FileNotFoundError:
        raise TensorBundleError(f"{where}: no such checkpoint index") from None
    except OSError as error:
        raise TensorBundleError(f"{where}: cannot be read ({error.strerror})") from None
    if len(table) < _FOOTER_SIZE:
        raise TensorBundleError(
            f"{where}: {len(table)} bytes, shorter than a table's {_FOOTER_SIZE}-byte footer (the index is cut)"
        )
    footer = table[-_FOOTER_SIZE:]
    (magic,) = struct.unpack_from("<Q", footer, _FOOTER_SIZE - 8)
    if magic != _TABLE_MAGIC:
        raise TensorBundleError(
            f"{where}: not a TensorFlow checkpoint index (its last 8 bytes are {footer[-8:].hex(' ')}, not the "
            f"table magic number; the file is cut or of another kind)"
        )
    _metaindex, position = _handle(footer, 0, where)
    index, _ = _handle(footer, position, where)
    entries = []
    for _last_key, value in _block_entries(_block(table, index, where), where):
        data_handle, _ = _handle(value, 0, where)
        entries += _block_entries(_block(table, data_handle, where), where)
    return entries


# --- the protobufs -------------------------------------------------------------------------------------------------


def _fields(message: bytes, where: str) -> list[tuple[int, int | bytes]]:
    """(field number, value) of a protobuf message: varints as ints, fixed32/64 as ints, length-delimited as bytes."""
    fields: list[tuple[int, int | bytes]] = []
    position = 0
    while position < len(message):
        tag, position = _varint(message, position, where)
        number, wire = tag >> 3, tag & 7
        value: int | bytes
        if wire == 0:
            value, position = _varint(message, position, where)
        elif wire == 1:
            value, position = struct.unpack_from("<Q", message, position)[0], position + 8
        elif wire == 5:
            value, position = struct.unpack_from("<I", message, position)[0], position + 4
        elif wire == 2:
            length, position = _varint(message, position, where)
            value, position = message[position : position + length], position + length
        else:
            raise TensorBundleError(f"{where}: an entry has protobuf wire type {wire}, not one TensorFlow writes")
        if position > len(message):
            raise TensorBundleError(f"{where}: an entry runs past its end (the index is damaged)")
        fields.append((number, value))
    return fields


@dataclass(frozen=True)
class BundleEntry:
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None
    sliced: bool


def _number(fields: dict[int, int | bytes], number: int, where: str, default: int = 0) -> int:
    value = fields.get(number, default)
    if not isinstance(value, int):
        raise TensorBundleError(f"{where}: protobuf field {number} is not a number (the index is damaged)")
    return value


def _message(fields: dict[int, int | bytes], number: int, where: str) -> bytes:
    value = fields.get(number, b"")
    if not isinstance(value, bytes):
        raise TensorBundleError(f"{where}: protobuf field {number} is not a message (the index is damaged)")
    return value


def _entry(value: bytes, where: str) -> BundleEntry:
    fields = dict(_fields(value, where))
    dims = [dim for number, dim in _fields(_message(fields, 2, where), where) if number == 2]
    shape = tuple(_number(dict(_fields(dim, where)), 1, where) for dim in dims if isinstance(dim, bytes))
    return BundleEntry(
        dtype=_number(fields, 1, where),
        shape=shape,
        shard_id=_number(fields, 3, where),
        offset=_number(fields, 4, where),
        size=_number(fields, 5, where),
        crc32c=_number(fields, 6, where) if 6 in fields else None,
        sliced=7 in fields,
    )


# --- the bundle ----------------------------------------------------------------------------------------------------


def checkpoint_prefix(path: str | os.PathLike) -> Path:
    """The prefix of a checkpoint named by its prefix, its `.index` file or one of its data shards."""
    path = Path(path)
    if path.name.endswith(INDEX_SUFFIX):
        return path.with_name(path.name[: -len(INDEX_SUFFIX)])
    shard = re.fullmatch(r"(.+)\.data-\d{5}-of-\d{5}", path.name)
    return path.with_name(shard.group(1)) if shard else path


def is_tf_checkpoint(path: str | os.PathLike) -> bool:
    """Whether `path` names a TensorFlow checkpoint: its `.index` file, a data shard, or a prefix with an index."""
    path = Path(path)
    if path.name.endswith(INDEX_SUFFIX) or re.search(r"\.data-\d{5}-of-\d{5}$", path.name):
        return True
    return not path.exists() and Path(f"{path}{INDEX_SUFFIX}").is_file()


def read_tf_checkpoint(prefix: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every tensor of a TensorFlow checkpoint by variable name (numpy arrays; strings as arrays of bytes)."""
    prefix = checkpoint_prefix(prefix)
    index = Path(f"{prefix}{INDEX_SUFFIX}")
    entries = read_table(index)
    if not entries or entries[0][0] != b"":
        raise TensorBundleError(f"{index}: the index has no bundle header (its first entry must have an empty key)")
    num_shards = _header(entries[0][1], str(index))
    shards: dict[int, bytes] = {}
    tensors = {}
    for key, value in entries[1:]:
        name = key.decode("utf-8", "replace")
        where = f"{index}: variable {name!r}"
        entry = _entry(value, where)
        if entry.sliced:
            raise TensorBundleError(f"{where} is saved in slices (a partitioned variable), which is not supported")
        if entry.shard_id not in shards:
            shards[entry.shard_id] = _shard(prefix, entry.shard_id, num_shards)
        tensors[name] = _tensor(entry, shards[entry.shard_id], where)
    return tensors


def _header(value: bytes, where: str) -> int:
    fields = dict(_fields(value, where))
    if _number(fields, 2, where) != 0:
        raise TensorBundleError(f"{where}: the checkpoint was written big-endian, which is not supported")
    return _number(fields, 1, where, default=1)


def _shard(prefix: Path, shard_id: int, num_shards: int) -> bytes:
    path = Path(f"{prefix}.data-{shard_id:05d}-of-{num_shards:05d}")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TensorBundleError(
            f"{path}: missing; a TensorFlow checkpoint needs its data shards beside its .index file"
        ) from None
    except OSError as error:
        raise TensorBundleError(f"{path}: cannot be read ({error.strerror})") from None


def _tensor(entry: BundleEntry, shard: bytes, where: str) -> np.ndarray:
    if entry.offset + entry.size > len(shard):
        raise TensorBundleError(
            f"{where} lies at bytes {entry.offset}-{entry.offset + entry.size} of a {len(shard)}-byte data shard "
            f"(the shard is cut)"
        )
    data = memoryview(shard)[entry.offset : entry.offset + entry.size]
    if entry.crc32c is not None and masked_crc32c(data) != entry.crc32c:
        raise TensorBundleError(f"{where}: its bytes do not match their checksum (the data shard is damaged)")
    if entry.dtype == _DT_STRING:
        return _strings(bytes(data), entry, where)
    if entry.dtype not in _DTYPES:
        raise TensorBundleError(f"{where} has TensorFlow dtype {entry.dtype}, which is not supported")
    dtype = np.dtype(_DTYPES[entry.dtype])
    count = int(np.prod(entry.shape, dtype=np.int64))
    if count * dtype.itemsize != entry.size:
        raise TensorBundleError(
            f"{where}: {entry.size} bytes for shape {list(entry.shape)} of {dtype.name} "
            f"({count * dtype.itemsize} expected)"
        )
    return np.frombuffer(data, dtype=dtype).reshape(entry.shape).copy()


def _strings(data: bytes, entry: BundleEntry, where: str) -> np.ndarray:
    """A string tensor: every element's length as a varint, a 4-byte checksum of the lengths, then the bytes."""
    count = int(np.prod(entry.shape, dtype=np.int64))
    lengths, position = [], 0
    for _ in range(count):
        length, position = _varint(data, position, where)
        lengths.append(length)
    position += 4
    values = []
    for length in lengths:
        values.append(data[position : position + length])
        position += length
    if position != len(data):
        raise TensorBundleError(f"{where}: its string bytes do not add up to its stored size")
    return np.array(values, dtype=object).reshape(entry.shape)


# --- SRN -----------------------------------------------------------------------------------------------------------


def srn_state_dict(variables: dict[str, np.ndarray], source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """`mprnet.models.srn`'s state dict from SRN's TensorFlow variables (the optimiser's slots and the global step
    are left out)."""
    state_dict = {}
    for name, value in variables.items():
        match = re.fullmatch(rf"{_TF_SCOPE}(.+)/(weights|biases)", name)
        if match is None:
            continue
        module = "lstm.conv" if match.group(1) == "convLSTM/LSTM_conv" else match.group(1).replace("/", ".")
        if match.group(2) == "biases":
            state_dict[f"{module}.bias"] = torch.from_numpy(np.ascontiguousarray(value))
            continue
        if value.ndim != 4:
            raise TensorBundleError(f"{source}: {name} has shape {list(value.shape)}, not a 2-D convolution's")
        # One permutation serves both: conv2d's HWIO -> OIHW, and conv2d_transpose's HWOI -> torch's IOHW.
        state_dict[f"{module}.weight"] = torch.from_numpy(np.ascontiguousarray(value.transpose(3, 2, 0, 1)))
    if not state_dict:
        raise TensorBundleError(f"{source}: no SRN variables (g_net/.../weights) in this TensorFlow checkpoint")
    return state_dict


def read_srn_checkpoint(prefix: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """SRN's state dict and a description of its source, from a TensorFlow checkpoint's prefix or `.index`."""
    prefix = checkpoint_prefix(prefix)
    state_dict = srn_state_dict(read_tf_checkpoint(prefix), source=f"{prefix}{INDEX_SUFFIX}")
    return state_dict, {"architecture": "srn", "source": f"TensorFlow checkpoint {prefix.name}", "task": "deblur"}


def convert_srn_checkpoint(src_prefix: Path, dst: Path, overwrite: bool = False) -> Path:
    """Write SRN's released TensorFlow checkpoint (`src_prefix`: its prefix or `.index`) as this package's
    `.safetensors` at `dst`, atomically; an existing `dst` is replaced only with `overwrite`."""
    from .checkpoint import model_from_state_dict, save_weights
    from .files import refuse_existing

    refuse_existing(dst, "output", overwrite)
    state_dict, metadata = read_srn_checkpoint(src_prefix)
    model = model_from_state_dict(state_dict, "srn", source=metadata["source"])
    return save_weights(model, dst, source=metadata["source"], task=metadata["task"])
