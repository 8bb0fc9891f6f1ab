"""Compression for real: a learned codec that writes files.

    blob = ae.codec.compress(model, x, bits=8)     # bytes: header + entropy-coded quantised codes
    x_hat = ae.codec.decompress(model, blob)       # = model.decode(dequantised codes), exactly

The codes of a trained autoencoder (posterior means for a VAE) are quantised by a uniform
scalar quantiser with one step for every dimension (below), and the integer symbols are
coded by a range coder (`constriction`, Bamler 2022) whose probabilities are adaptive
frequency counts, one table per code dimension. The file format:

    prefix   magic b"\\x89AECODEC", format version (u16), total length of the file (u64)
    header   model fingerprint (16 bytes: SHA-256 of the model's configuration JSON and weights),
             count N (u64), latent_dim K (u32), bits (u8), number of input dimensions (u8),
             quantisation step (f32), the input shape (u32 each), per code dimension its
             offset (f32) and number of levels minus one (u16)
    payload  the range coder's 32-bit words, little-endian; at least N / EXAMPLES_PER_BYTE bytes
    crc32    of everything before it (u32)

All integers little-endian. A file written by another model, a truncated or altered file,
a newer format version, a header whose count the payload cannot hold and one whose count
would need more memory than the limit (aekit.budget) are refused before anything is
allocated; a payload forged with a valid checksum fails the range decoder's checks or the
last one, that the payload is exactly the coding of the symbols it decodes to. Decoding is deterministic: the probabilities are integer
counts, the same in the encoder and the decoder, and dequantisation is one float32
multiply-add.

The baseline a user would reach for first, PCA, goes through exactly the same code: a
`pca` model (a linear autoencoder whose weights are the principal components,
`pca_model(train, k)`) is compressed like any other.
"""

from aekit.codec.coder import MAX_BITS, Quantiser, decode_symbols, encode_symbols
from aekit.codec.format import (
    EXAMPLES_PER_BYTE,
    FORMAT_VERSION,
    MAGIC,
    Header,
    check_model,
    compress,
    decompress,
    fingerprint,
    read_header,
)
from aekit.codec.measure import codec_points, distortion, image_codec_points, pca_model, rate_distortion

__all__ = ["EXAMPLES_PER_BYTE", "FORMAT_VERSION", "MAGIC", "MAX_BITS", "Header", "Quantiser", "check_model", "codec_points",
           "compress", "decode_symbols", "decompress", "distortion", "encode_symbols", "fingerprint", "image_codec_points",
           "pca_model", "rate_distortion", "read_header"]
