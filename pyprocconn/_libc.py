"""The raw layer: the few libc calls the connector needs (sockets, and ``syscall`` for the
scheduler's ``sched_setattr``), through ctypes.

Signatures are declared as data (:data:`SIGNATURES`) and applied once. Every call goes through
:func:`call`, which retries ``EINTR`` (running Python's signal handlers in between, so Ctrl-C
still interrupts) and raises ``OSError(errno, strerror)`` for any other failure, so callers get
``PermissionError`` and friends for free. The socket structs here (``iovec``, ``msghdr``,
``mmsghdr``) come from libc's ``<sys/socket.h>``, not from the kernel headers this project vendors.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
from collections.abc import Callable, Iterator
from typing import Any, Final

from pyprocconn.kernel.netlink import sockaddr_nl

# From <asm-generic/socket.h>; Python's socket module does not export it.
SO_RCVBUFFORCE: Final = 33
# From <sys/socket.h>: MSG_WAITFORONE is not in Python's socket module either.
MSG_WAITFORONE: Final = 0x10000
# Plain ints: the socket module's are enum members, whose operators are slow on a hot path.
MSG_DONTWAIT: Final = int(socket.MSG_DONTWAIT)
MSG_TRUNC: Final = int(socket.MSG_TRUNC)


class iovec(ctypes.Structure):  # noqa: N801 - C name
    _fields_ = (("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t))


class msghdr(ctypes.Structure):  # noqa: N801 - C name
    _fields_ = (
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.POINTER(iovec)),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    )


class mmsghdr(ctypes.Structure):  # noqa: N801 - C name
    _fields_ = (("msg_hdr", msghdr), ("msg_len", ctypes.c_uint))


_int, _ptr, _size, _ssize = ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_ssize_t
# name -> (restype, argtypes)
SIGNATURES: Final[dict[str, tuple[Any, tuple[Any, ...]]]] = {
    "socket": (_int, (_int, _int, _int)),
    "bind": (_int, (_int, _ptr, ctypes.c_uint32)),
    "sendto": (_ssize, (_int, _ptr, _size, _int, _ptr, ctypes.c_uint32)),
    "recvfrom": (_ssize, (_int, _ptr, _size, _int, _ptr, ctypes.POINTER(ctypes.c_uint32))),
    # The mmsghdr array goes as an address: converting an array object costs more per call.
    "recvmmsg": (_int, (_int, _ptr, ctypes.c_uint, _int, _ptr)),
    "setsockopt": (_int, (_int, _int, _int, _ptr, ctypes.c_uint32)),
    "getsockopt": (_int, (_int, _int, _int, _ptr, ctypes.POINTER(ctypes.c_uint32))),
    "getsockname": (_int, (_int, _ptr, ctypes.POINTER(ctypes.c_uint32))),
    "close": (_int, (_int,)),
    # Shaped as sched_getattr(pid, attr, size, flags) / sched_setattr(pid, attr, flags) take it.
    "syscall": (ctypes.c_long, (ctypes.c_long, _int, _ptr, ctypes.c_uint, ctypes.c_uint)),
}


def _load() -> dict[str, Callable[..., int]]:
    libc = ctypes.CDLL(None, use_errno=True)  # the already-loaded libc; no find_library
    functions: dict[str, Callable[..., int]] = {}
    for name, (restype, argtypes) in SIGNATURES.items():
        function = getattr(libc, name)
        function.restype, function.argtypes = restype, argtypes
        functions[name] = function
    return functions


_FUNCTIONS: Final = _load()


def call(name: str, *args: Any) -> int:
    """Call libc ``name``; retry on EINTR; raise OSError on failure; return the result."""
    function = _FUNCTIONS[name]
    while True:
        result = function(*args)
        if result != -1:
            return result
        error = ctypes.get_errno()
        if error != errno.EINTR:
            raise OSError(error, os.strerror(error))


def socket_netlink(protocol: int) -> int:
    return call("socket", socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, protocol)


def bind_netlink(fd: int, groups: int) -> None:
    address = sockaddr_nl(nl_family=socket.AF_NETLINK, nl_pid=0, nl_groups=groups)
    call("bind", fd, ctypes.byref(address), ctypes.sizeof(address))


def sendto_kernel(fd: int, data: bytes) -> None:
    address = sockaddr_nl(nl_family=socket.AF_NETLINK, nl_pid=0, nl_groups=0)
    call("sendto", fd, data, len(data), 0, ctypes.byref(address), ctypes.sizeof(address))


def setsockopt_int(fd: int, level: int, option: int, value: int) -> None:
    number = ctypes.c_int(value)
    call("setsockopt", fd, level, option, ctypes.byref(number), ctypes.sizeof(number))


def getsockopt_int(fd: int, level: int, option: int) -> int:
    number, size = ctypes.c_int(0), ctypes.c_uint32(ctypes.sizeof(ctypes.c_int))
    call("getsockopt", fd, level, option, ctypes.byref(number), ctypes.byref(size))
    return number.value


def port_id(fd: int) -> int:
    """The netlink port id the kernel gave the socket (``getsockname``'s ``nl_pid``)."""
    address, size = sockaddr_nl(), ctypes.c_uint32(ctypes.sizeof(sockaddr_nl))
    call("getsockname", fd, ctypes.byref(address), ctypes.byref(size))
    return int(address.nl_pid)


def close(fd: int) -> None:
    # Not retried on EINTR: on Linux the descriptor is gone either way.
    if _FUNCTIONS["close"](fd) == -1:
        error = ctypes.get_errno()
        if error != errno.EINTR:
            raise OSError(error, os.strerror(error))


class RecvFrom:
    """One ``recvfrom`` into a caller-owned writable buffer, keeping the sender's address."""

    def __init__(self) -> None:
        self.sender = sockaddr_nl()
        self._size = ctypes.c_uint32()

    def __call__(self, fd: int, buffer: Any, nbytes: int, flags: int) -> int:
        """Bytes received; the full datagram size when MSG_TRUNC is in ``flags``."""
        self._size.value = ctypes.sizeof(self.sender)
        self.sender.nl_pid = 0xFFFFFFFF  # so an address the kernel did not fill looks foreign
        return call(
            "recvfrom",
            fd,
            buffer,
            nbytes,
            flags,
            ctypes.byref(self.sender),
            ctypes.byref(self._size),
        )


class RecvBatch:
    """``recvmmsg`` into ``slots`` buffers of ``slot_size`` bytes, with each sender's address.

    The per-call bookkeeping avoids ctypes attribute access (slow): the value-result fields are
    restored by copying a pristine image of the header array, and results are read with
    :mod:`struct` from a memoryview of it.
    """

    def __init__(self, slots: int, slot_size: int, group: int) -> None:
        self.slots, self.slot_size = slots, slot_size
        self.buffer = bytearray(slots * slot_size)
        self._raw = (ctypes.c_char * len(self.buffer)).from_buffer(self.buffer)
        self.names = (sockaddr_nl * slots)()
        self._iov = (iovec * slots)()
        self.headers = (mmsghdr * slots)()
        base = ctypes.addressof(self._raw)
        for i in range(slots):
            self._iov[i].iov_base = base + i * slot_size
            self._iov[i].iov_len = slot_size
            header = self.headers[i].msg_hdr
            header.msg_name = ctypes.addressof(self.names[i])
            header.msg_namelen = ctypes.sizeof(sockaddr_nl)
            header.msg_iov = ctypes.pointer(self._iov[i])
            header.msg_iovlen = 1
        self._header_size = ctypes.sizeof(mmsghdr)
        self._headers_view = memoryview(self.headers).cast("B")
        self._names_view = memoryview(self.names).cast("B")
        self._pristine = memoryview(bytes(self._headers_view))
        self._headers_address = ctypes.addressof(self.headers)
        flags_at = mmsghdr.msg_hdr.offset + msghdr.msg_flags.offset
        length_at = mmsghdr.msg_len.offset
        self._result = struct.Struct(
            f"={flags_at}xi{length_at - flags_at - 4}xI{self._header_size - length_at - 4}x"
        )
        pid_at: int = getattr(sockaddr_nl, "nl_pid").offset  # noqa: B009 - typed as int
        self._sender = struct.Struct(f"={pid_at}xI{ctypes.sizeof(sockaddr_nl) - pid_at - 4}x")
        # The address the kernel writes for a multicast it sent to ``group``: when every
        # datagram of a call carries it, one comparison clears them all.
        kernel = sockaddr_nl(nl_family=socket.AF_NETLINK, nl_pid=0, nl_groups=1 << (group - 1))
        self._from_kernel = memoryview(bytes(kernel) * slots)
        self._dirty = 0  # headers whose value-result fields the last call overwrote
        self._count = 0

    def __call__(self, fd: int, flags: int) -> int:
        """Datagrams received; raises OSError (EAGAIN when none are queued)."""
        if self._dirty:
            end = self._dirty * self._header_size
            self._headers_view[:end] = self._pristine[:end]
            self._dirty = 0
        received = call("recvmmsg", fd, self._headers_address, self.slots, flags, None)
        self._dirty = self._count = received
        return received

    def results(self) -> tuple[Iterator[tuple[int, int]], list[int] | None]:
        """The last call's (msg_flags, bytes received) of each datagram, and each sender's port
        id, or None when the kernel sent them all (the usual case)."""
        count = self._count
        headers = self._result.iter_unpack(self._headers_view[: count * self._header_size])
        names = self._names_view[: count * ctypes.sizeof(sockaddr_nl)]
        if names == self._from_kernel[: len(names)]:
            return headers, None
        return headers, [pid for (pid,) in self._sender.iter_unpack(names)]
