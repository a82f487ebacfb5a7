"""A cache prefetch hint for numba kernels (LLVM's `llvm.prefetch`, `prefetcht0` on x86).

The context-mixing engine reads a dozen random lines of tables much larger than the caches for
every bit of every lane; asked for one lane at a time, those loads wait on memory one after
another. A hint issued as soon as an address is known lets the line arrive while other lanes
work. A hint never faults and never changes a value: the kernels compute the same bits with it
or without it.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def prefetch(typingctx, arr, flat):
    """Hint the cache line that holds element `flat` of the C-contiguous array `arr` (counted
    from its first element) into the first-level cache, for reading."""
    def codegen(context, builder, signature, args):
        array, index = args
        data = cgutils.create_struct_proxy(signature.args[0])(context, builder, value=array).data
        address = builder.gep(data, [index])  # no `inbounds`: a hint past the end is harmless
        i32 = ir.IntType(32)
        hint = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [address.type, i32, i32, i32]), "llvm.prefetch.p0")
        builder.call(hint, [address, i32(0), i32(3), i32(1)])  # read, keep in all levels, data cache
        return context.get_dummy_value()

    return types.none(arr, types.int64), codegen
