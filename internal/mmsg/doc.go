// Package mmsg batches UDP datagrams through recvmmsg(2) and sendmmsg(2),
// which golang.org/x/sys/unix does not wrap.
//
// Data flow:
//
//  1. NewBatch allocates, once, n slots: each a buffer, an iovec pointing at
//     it, a sockaddr buffer and the mmsghdr that ties them together.
//  2. Recv fills up to n slots with one syscall; Size, Truncated, Payload and
//     Peer read each slot's result in place.
//  3. The caller rearranges slots (Swap), sets sizes (SetSize) and
//     destinations (SetPeer, ClearPeer), then Send passes a run of slots to
//     one sendmmsg.
//
// Nothing here allocates after NewBatch, and errors are bare unix.Errno
// values (comparable with ==), because wrapping would allocate per call on
// a data path.
package mmsg
