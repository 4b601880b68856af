package outdir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ErrUnsafe says an output folder or file is not safe to write: a link or a
// folder that belongs to another user.
var ErrUnsafe = errors.New("unsafe output path")

// Prepare makes dir (and its parents) when it is missing and checks it as
// Check does, returning the folder to write into.
func Prepare(dir string) (string, error) {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("create results folder: %w", err)
		}
	}
	return Check(dir)
}

// Subdir makes the folder name inside parent (Prepare checks parent) and
// returns its path. Nothing ringbench makes inside a results folder is a
// link, so a link at name is refused whoever owns it, as is a folder of
// another user.
func Subdir(parent, name string) (string, error) {
	parent, err := Prepare(parent)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("create %s folder: %w", name, err)
	}
	fi, err := os.Lstat(dir)
	switch {
	case err != nil:
		return "", fmt.Errorf("check %s folder: %w", name, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return "", fmt.Errorf("check %s folder %s: %w: it is a symbolic link", name, dir, ErrUnsafe)
	case !fi.IsDir():
		return "", fmt.Errorf("check %s folder %s: not a folder", name, dir)
	case owner(fi) != os.Geteuid():
		return "", fmt.Errorf("check %s folder %s: %w: owned by uid %d, not %d", name, dir, ErrUnsafe, owner(fi), os.Geteuid())
	}
	return dir, nil
}

// Check returns the folder dir names when it is safe to write into: a
// folder owned by the current user, or a link owned by the current user to
// such a folder (then the link's target is returned, so that later writes
// do not depend on the link). Anything else is ErrUnsafe.
func Check(dir string) (string, error) {
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("check results folder: %w", err)
	}
	euid := os.Geteuid()
	if fi.Mode()&fs.ModeSymlink != 0 {
		if uid := owner(fi); uid != euid {
			return "", fmt.Errorf("check results folder %s: %w: a symbolic link owned by uid %d, not %d", dir, ErrUnsafe, uid, euid)
		}
		target, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return "", fmt.Errorf("check results folder %s: resolve link: %w", dir, err)
		}
		// The target itself must pass, as a folder and not another link.
		if fi, err = os.Lstat(target); err != nil {
			return "", fmt.Errorf("check results folder: %w", err)
		}
		dir = target
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("check results folder %s: not a folder", dir)
	}
	if uid := owner(fi); uid != euid {
		return "", fmt.Errorf("check results folder %s: %w: owned by uid %d, not %d", dir, ErrUnsafe, uid, euid)
	}
	return dir, nil
}

func owner(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// WriteFile replaces path whole with what write produces: into a fresh
// temporary file beside it, synced, then renamed over path. Whatever was at
// path (a link included) is replaced, not written through.
func WriteFile(path string, write func(io.Writer) error) (err error) {
	name := filepath.Base(path)
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	if err := write(tmp); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace %s: %w", name, err)
	}
	return nil
}

// WriteBytes is WriteFile of a byte slice.
func WriteBytes(path string, b []byte) error {
	return WriteFile(path, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// OpenAppend opens path for appending (creating it), refusing a link at its
// name and anything but a regular file.
func OpenAppend(path string) (*os.File, error) {
	return open(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND)
}

// OpenReadWrite opens path for reading and writing (creating it) with the
// same checks as OpenAppend; for a file that is repaired before appending.
func OpenReadWrite(path string) (*os.File, error) {
	return open(path, os.O_CREATE|os.O_RDWR)
}

func open(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o644)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("open %s: %w: it is a symbolic link", path, ErrUnsafe)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", filepath.Base(path), err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("open %s: %w: not a regular file", path, ErrUnsafe)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
