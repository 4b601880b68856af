package harness

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
)

// build identifies the running executable: the revision it was built from
// and a digest of its bytes. The revision alone does not: a build of a
// tree with changes carries its commit's revision.
type build struct {
	rev, digest string
}

var thisBuild = sync.OnceValues(func() (build, error) {
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return build{}, fmt.Errorf("open own executable: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return build{}, fmt.Errorf("read own executable: %w", err)
	}
	return build{rev: gitRev(), digest: hex.EncodeToString(h.Sum(nil))[:16]}, nil
})

// Version is the line `ringbench version` prints. Two executables print
// the same line only if they are the same bytes, so the hosts topology
// trusts a client host's ringbench that prints this one.
func Version() (string, error) {
	b, err := thisBuild()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("ringbench %s %s %s/%s sha256:%s", b.rev, runtime.Version(), runtime.GOOS, runtime.GOARCH, b.digest), nil
}

// remoteName is the file name of this build's copy on a client host.
func remoteName() (string, error) {
	b, err := thisBuild()
	if err != nil {
		return "", err
	}
	rev := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, b.rev)
	return "ringbench-" + rev + "-" + b.digest, nil
}
