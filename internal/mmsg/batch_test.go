package mmsg

import (
	"bytes"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"ringbench/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The kernel reads these structs in place: their layout is the ABI.
func TestLayout(t *testing.T) {
	if got, want := unsafe.Sizeof(unix.Mmsghdr{}), uintptr(unix.SizeofMmsghdr); got != want {
		t.Errorf("sizeof(mmsghdr) = %d, want %d", got, want)
	}
	if got := unsafe.Offsetof(unix.Mmsghdr{}.Len); got != unix.SizeofMsghdr {
		t.Errorf("offsetof(mmsghdr.msg_len) = %d, want %d", got, unix.SizeofMsghdr)
	}
	if unsafe.Sizeof(Peer{}.raw) < unix.SizeofSockaddrInet4 {
		t.Errorf("a Peer cannot hold a sockaddr_in")
	}
}

// udpSocket returns a blocking UDP socket bound to 127.0.0.1 and its port.
func udpSocket(t *testing.T) (int, int) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, sa.(*unix.SockaddrInet4).Port
}

func TestRecvSwapSend(t *testing.T) {
	client, clientPort := udpSocket(t)
	server, serverPort := udpSocket(t)
	to := &unix.SockaddrInet4{Port: serverPort, Addr: [4]byte{127, 0, 0, 1}}
	sent := [][]byte{bytes.Repeat([]byte{'a'}, 10), bytes.Repeat([]byte{'b'}, 51), bytes.Repeat([]byte{'c'}, 20)}
	for _, p := range sent {
		if err := unix.Sendto(client, p, 0, to); err != nil {
			t.Fatal(err)
		}
	}
	// Loopback delivers within sendto, so all three are queued by now.
	b := NewBatch(4, 50)
	n, err := b.Recv(server, unix.MSG_DONTWAIT)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("Recv = %d datagrams, want 3", n)
	}
	for i, want := range []struct {
		size      int
		truncated bool
	}{{10, false}, {50, true}, {20, false}} {
		if b.Size(i) != want.size || b.Truncated(i) != want.truncated {
			t.Errorf("slot %d: size %d truncated %v, want %d %v", i, b.Size(i), b.Truncated(i), want.size, want.truncated)
		}
		if p := b.Peer(i).Port(); p != clientPort {
			t.Errorf("slot %d: peer port %d, want %d", i, p, clientPort)
		}
	}
	if !bytes.Equal(b.Payload(2), sent[2]) {
		t.Errorf("slot 2 holds %q, want %q", b.Payload(2), sent[2])
	}

	// Echo the two whole ones back, in one call, with the gap closed.
	b.Swap(1, 2)
	for i := range 2 {
		b.SetSize(i, b.Size(i))
	}
	m, err := b.Send(server, 0, 2, 0)
	if err != nil || m != 2 {
		t.Fatalf("Send = %d, %v; want 2, nil", m, err)
	}
	buf := make([]byte, 100)
	for _, want := range [][]byte{sent[0], sent[2]} {
		k, _, err := unix.Recvfrom(client, buf, unix.MSG_DONTWAIT)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:k], want) {
			t.Errorf("echo %q, want %q", buf[:k], want)
		}
	}
	if _, err := b.Recv(server, unix.MSG_DONTWAIT); err != unix.EAGAIN {
		t.Errorf("Recv on an empty socket: %v, want EAGAIN as a bare Errno", err)
	}
}

func TestSendConnectedAndPeer(t *testing.T) {
	client, clientPort := udpSocket(t)
	server, serverPort := udpSocket(t)
	if err := unix.Connect(client, &unix.SockaddrInet4{Port: serverPort, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	out := NewBatch(2, 8)
	for i := range 2 {
		copy(out.Buf(i), []byte{byte(i), 1, 2, 3, 4, 5, 6, 7})
		out.SetSize(i, 8)
		out.ClearPeer(i)
	}
	if m, err := out.Send(client, 0, 2, 0); err != nil || m != 2 {
		t.Fatalf("Send on a connected socket = %d, %v; want 2, nil", m, err)
	}
	in := NewBatch(2, 8)
	n, err := in.Recv(server, unix.MSG_DONTWAIT)
	if err != nil || n != 2 {
		t.Fatalf("Recv = %d, %v; want 2, nil", n, err)
	}
	if in.Peer(0) != in.Peer(1) || in.Peer(0).Port() != clientPort {
		t.Errorf("peers %d and %d, want both %d", in.Peer(0).Port(), in.Peer(1).Port(), clientPort)
	}
	// A reply addressed with SetPeer reaches the client.
	reply := NewBatch(1, 8)
	reply.SetPeer(0, in.Peer(1))
	reply.SetSize(0, 3)
	if m, err := reply.Send(server, 0, 1, 0); err != nil || m != 1 {
		t.Fatalf("Send to a Peer = %d, %v; want 1, nil", m, err)
	}
	buf := make([]byte, 8)
	if k, err := unix.Read(client, buf); err != nil || k != 3 {
		t.Errorf("client read %d, %v; want 3 bytes", k, err)
	}
	if m, err := reply.Send(server, 1, 1, 0); m != 0 || err != nil {
		t.Errorf("Send of no slots = %d, %v; want 0, nil", m, err)
	}
}
