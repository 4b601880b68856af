package results

// Lesson is what the middle-ground experiments measured beside the trials:
// what one kernel crossing costs here, and which kernel features still see
// each backend's traffic. The harness fills it; reports only read it.
type Lesson struct {
	SyscallCost *SyscallCost     `json:"syscall_cost"` // nil: not calibrated
	Features    []KernelFeatures `json:"features"`
	// NotMeasured gives, one sentence each, what was not measured and why
	// ("nft: command not found", "dpdk: backend unavailable").
	NotMeasured []string `json:"not_measured,omitempty"`
	Env         Env      `json:"env"`
}

// SyscallCost is the calibration of a null syscall on this machine.
type SyscallCost struct {
	NsPerCall float64 `json:"ns_per_call"`
	Method    string  `json:"method"` // how it was timed: "getppid via syscall.RawSyscall, best of 5"
	Calls     uint64  `json:"calls"`
	// CyclesPerCall is NsPerCall × TSC Hz; nil when the TSC rate is unknown.
	CyclesPerCall *float64 `json:"cycles_per_call,omitempty"`
}

// Verdict is the answer of a kernel-feature check.
type Verdict string

// Verdicts.
const (
	Yes        Verdict = "yes"
	No         Verdict = "no"
	Unmeasured Verdict = "unmeasured" // Reason says why
)

// FeatureCheck is one kernel-feature check for one backend.
type FeatureCheck struct {
	Verdict Verdict `json:"verdict"`
	Reason  string  `json:"reason,omitempty"` // why unmeasured
	// Counted is the number the check observed (packets an nft counter
	// counted; requests answered under a drop rule), Sent what the
	// generator sent; nil when not applicable.
	Counted *uint64 `json:"counted,omitempty"`
	Sent    *uint64 `json:"sent,omitempty"`
	Note    string  `json:"note,omitempty"`
}

// KernelFeatures is one backend's row of the kernel-features table.
type KernelFeatures struct {
	Backend  string `json:"backend"` // label: epoll, uring, uring-sqpoll, dpdk
	Topology string `json:"topology"`
	Proto    string `json:"proto"`
	// NftCounts: a counter rule in the server's namespace counted its packets.
	NftCounts FeatureCheck `json:"nft_counts"`
	// NftDropStops: a drop rule there stopped its traffic.
	NftDropStops FeatureCheck `json:"nft_drop_stops"`
	// SSListsSocket: `ss` in the server's namespace listed its socket.
	SSListsSocket FeatureCheck `json:"ss_lists_socket"`
}

// LoadLesson reads dir's lesson.json; a folder without one gives nil, nil.
func LoadLesson(dir string) (*Lesson, error) {
	var l Lesson
	if ok, err := loadJSON(dir, LessonFile, "lesson", &l); !ok {
		return nil, err
	}
	return &l, nil
}

// Save writes l as dir's lesson.json, replacing it whole so that a reader
// never sees half a file.
func (l *Lesson) Save(dir string) error { return saveJSON(dir, LessonFile, "lesson", l) }
