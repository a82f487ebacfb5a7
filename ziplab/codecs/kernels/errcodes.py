"""Error codes of every numba decoder, one numbering for all of them (0 = ok).

A kernel returns a code; `classic.decode_checked` turns it into a one-line CorruptDataError
named after the codec. The codes never reach a file, so adding one changes no format."""

ERR_TRUNCATED = 1
ERR_BAD_TABLE = 2
ERR_BAD_CODE = 3
ERR_BAD_HEADER = 4
ERR_ZERO_OFFSET = 5
ERR_DISTANCE = 6
ERR_OVERFLOW = 7
ERR_TRAILING = 8
ERR_LITERAL_OFFSET = 9
ERR_FLAGS = 10

MESSAGES = {
    ERR_TRUNCATED: "payload ends before the block is complete",
    ERR_BAD_TABLE: "invalid code-length table (over-subscribed or malformed)",
    ERR_BAD_CODE: "bit pattern matches no code",
    ERR_BAD_HEADER: "bad chunk-size byte",
    ERR_ZERO_OFFSET: "match with offset 0",
    ERR_DISTANCE: "match reaches before the start of the block",
    ERR_OVERFLOW: "decoded data runs past the block size",
    ERR_TRAILING: "payload has bytes after the block is complete",
    ERR_LITERAL_OFFSET: "literal with a non-zero offset",
    ERR_FLAGS: "flag bits set for tokens past the end of the block",
}
