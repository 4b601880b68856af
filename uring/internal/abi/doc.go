// Package abi is the io_uring ABI in Go: the structs and constants of the
// kernel's include/uapi/linux/io_uring.h, named as the kernel names them so
// that a reader can grep the kernel source for any of them.
//
// Data flow:
//
//  1. The ring package fills an IoUringParams and passes it to io_uring_setup;
//     the kernel writes back the ring sizes, the feature bits and the
//     IoSqringOffsets/IoCqringOffsets of the shared ring memory.
//  2. Requests are IoUringSqe values written into the mmapped SQ array;
//     results come back as IoUringCqe values in the mmapped CQ array.
//  3. Registration arguments (IoUringBufReg, IoUringRsrcRegister,
//     IoUringRsrcUpdate, IoUringProbe) and the provided-buffer ring entries
//     (IoUringBuf) and the multishot recvmsg header (IoUringRecvmsgOut) are
//     plain structs whose layout the tests pin to the kernel's.
//
// Constants newer than Debian 12's 6.1 headers come from the kernel's uapi
// header of the release named beside them.
package abi
