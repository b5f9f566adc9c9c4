// Command go_client_llb prints the op digests Go's client/llb (BuildKit v0.32.2) marshals for each
// state below, as the JSON in ../go_client_llb_digests.json. golden_test.py builds the same states
// with llbkit and checks the digests (hence the bytes) are identical.
//
// A dev tool, not part of llbkit. To regenerate the JSON:
//
//	dir=$(mktemp -d) && cp src/llbkit/llb/testdata/go_client_llb/main.go "$dir"
//	(cd "$dir" && go mod init golden && go get github.com/moby/buildkit@v0.32.2 && go mod tidy && go run .) \
//	    > src/llbkit/llb/testdata/go_client_llb_digests.json
//
// Every state here has a twin in golden_test.py; keep the two lists in step.
package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"time"

	"github.com/moby/buildkit/client/llb"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

var digests = map[string][]string{}

func write(name string, st llb.State, co ...llb.ConstraintsOpt) {
	co = append([]llb.ConstraintsOpt{llb.LinuxAmd64, llb.LocalUniqueID("uid1")}, co...)
	def, err := st.Marshal(context.Background(), co...)
	if err != nil {
		panic(name + ": " + err.Error())
	}
	for _, dt := range def.Def {
		digests[name] = append(digests[name], digest.FromBytes(dt).String())
	}
}

func main() {
	busybox := llb.Image("busybox")
	write("image_run", busybox.Run(llb.Shlex("echo hi")).Root())

	t := time.Unix(1700000000, 123456000).UTC()
	write("file_chain", llb.Scratch().Dir("/work").File(
		llb.Mkdir("/app", 0o755, llb.WithParents(true), llb.WithUIDGID(1000, 1000)).
			Mkfile("hello.txt", 0o644, []byte("hello <world> & co\n"), llb.WithUser("app:staff"), llb.WithCreatedTime(t)).
			Mkfile("/app/x", 0o600, nil, llb.WithUser("root")).
			Symlink("/app/x", "/app/link").
			Rm("/tmp/*", llb.WithAllowWildcard(true), llb.WithAllowNotFound(true)),
		llb.WithCustomName("make files")))

	write("copy_opts", llb.Scratch().File(llb.Copy(busybox.Dir("/etc"), "passwd", "/out/", &llb.CopyInfo{
		Mode:                           &llb.ChmodOpt{Mode: 0o640},
		FollowSymlinks:                 true,
		CopyDirContentsOnly:            true,
		AttemptUnpack:                  true,
		CreateDestPath:                 true,
		AllowWildcard:                  true,
		AllowEmptyWildcard:             true,
		IncludePatterns:                []string{"*.conf", "a&b"},
		ExcludePatterns:                []string{"secret*"},
		ChownOpt:                       &llb.ChownOpt{User: &llb.UserOpt{UID: 1}, Group: &llb.UserOpt{Name: "wheel"}},
		CreatedTime:                    &t,
		AlwaysReplaceExistingDestPaths: true,
	})))
	write("copy_modestr", llb.Scratch().File(llb.Copy(busybox, "/bin/sh", "/sh", llb.ChmodOpt{ModeStr: "u+x,go-w"}), llb.WithCustomName("c")))

	cacheSrc := llb.Scratch()
	data := llb.Scratch().File(llb.Mkfile("/d", 0o644, []byte("d")))
	target := "/run/secrets/tok"
	es := busybox.Dir("/src").User("nobody").AddEnv("A", "1").AddEnv("B", "2").AddEnv("A", "3").
		Network(llb.NetModeNone).Hostname("builder").
		Run(llb.Args([]string{"/bin/sh", "-c", "env; pwd"}),
			llb.AddMount("/cache", cacheSrc, llb.AsPersistentCacheDir("pip", llb.CacheMountLocked)),
			llb.AddMount("/tmp", llb.Scratch(), llb.Tmpfs(llb.TmpfsSize(1<<20))),
			llb.AddMount("/data", data, llb.Readonly, llb.SourcePath("/d")),
			llb.AddMount("/out", llb.Scratch()),
			llb.AddSecretWithDest("tok", &target, llb.SecretFileOpt(1, 2, 0o440), llb.SecretOptional),
			llb.AddSecret("API", llb.SecretID("api"), llb.SecretAsEnv(true)),
			llb.AddSSHSocket(llb.SSHID("default")),
			llb.AddExtraHost("registry", net.ParseIP("10.0.0.1")),
			llb.AddUlimit(llb.UlimitNofile, 1024, 2048),
			llb.ValidExitCodes(0, 1),
			llb.WithCgroupParent("/bk"),
			llb.WithProxy(llb.ProxyEnv{HTTPProxy: "http://p:3128", NoProxy: "localhost"}),
			llb.WithCustomName("the run"),
			llb.IgnoreCache,
		)
	write("exec_all", es.Root())
	write("exec_mount_out", llb.Scratch().File(llb.Copy(es.GetMount("/out"), "/", "/from-out/")))

	a := llb.Scratch().File(llb.Mkfile("/a", 0o644, []byte("a")))
	b := llb.Scratch().File(llb.Mkfile("/b", 0o644, []byte("b")))
	write("merge", llb.Merge([]llb.State{a, llb.Scratch(), b, a}, llb.WithCustomName("m")))
	upper := busybox.Run(llb.Shlex("touch /new")).Root()
	write("diff", llb.Diff(busybox, upper))
	write("diff_scratch_upper", llb.Diff(busybox, llb.Scratch()))

	write("local", llb.Scratch().File(llb.Copy(llb.Local("context",
		llb.IncludePatterns([]string{"src/", "a<b>&c"}), llb.ExcludePatterns([]string{"*.pyc"}),
		llb.FollowPaths([]string{"src"}), llb.SharedKeyHint("ctx"), llb.Differ(llb.DiffNone, true)), "/src", "/app")))
	write("git", llb.Git("https://github.com/moby/buildkit.git", "v0.32.2:frontend", llb.KeepGitDir()))
	write("git_scp", llb.Git("git@github.com:moby/buildkit.git", "main", llb.KnownSSHHosts("github.com ssh-ed25519 AAAA")))
	write("git_noscheme", llb.Git("github.com/moby/buildkit", ""))
	write("http", llb.HTTP("https://example.com/a.tar.gz", llb.Checksum(digest.Digest("sha256:"+"ab"+"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd")),
		llb.Filename("a.tgz"), llb.Chmod(0o755), llb.Chown(1, 2)))
	write("oci", llb.OCILayout("docker.io/library/foo@sha256:"+"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", llb.OCIStore("", "store")))
	write("image_opts", llb.Image("ghcr.io/a/b:1", llb.Platform(ocispecs.Platform{OS: "linux", Architecture: "arm64"}), llb.ResolveModeForcePull))

	base := llb.Image("alpine:3.20")
	left := base.Run(llb.Shlex("touch /l")).Root()
	right := base.Run(llb.Shlex("touch /r")).Root()
	write("diamond", llb.Merge([]llb.State{left, right}))

	chain := llb.Mkdir("/x", 0o755).Mkfile("/x/f", 0o644, []byte("f"))
	write("copy_from_chain", busybox.File(chain.Copy(chain.WithState(llb.Scratch().Dir("/x")), "f", "/g")))
	write("meta", busybox.Run(llb.Shlex("true"), llb.ProgressGroup("g1", "Group", true), llb.WithExportCache()).Root(),
		llb.Require("arch==amd64"))
	write("readonly_root", busybox.Run(llb.Shlex("true"), llb.ReadonlyRootFS(), llb.AddMount("/o", llb.Scratch())).GetMount("/o"))
	write("security", busybox.Security(llb.SecurityModeInsecure).Run(llb.Shlex("true")).Root())
	write("run_scratch", llb.Scratch().Dir("/w").Run(llb.Args([]string{"/bin/true"}), llb.AddMount("/m", busybox, llb.SourcePath("/etc"))).GetMount("/m"))
	write("copy_self", busybox.File(llb.Copy(busybox, "/etc/passwd", "/etc/passwd.bak").Copy(busybox, "bin/", "/b/.")))
	write("image_digest", llb.Image("alpine@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef").Run(llb.Shlex("true")).Root(),
		llb.Platform(ocispecs.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}))
	old := time.Unix(-86400, 0).UTC()
	write("old_time", llb.Scratch().File(llb.Mkdir("/d", 0o1777, llb.WithCreatedTime(old)).Mkfile("/d/f", 0o4755, []byte("x"))))

	// What llbkit.image lowers RUN mounts and ADD to (issue 14): a cache seeded with its owner
	// and mode, bind mounts read-only and read-write without output, an ssh socket with options,
	// a secret as an environment variable, network host + security insecure, ADD of a URL and of
	// an archive.
	seed := llb.Scratch().File(llb.Mkdir("/cache", 0o750, llb.WithUIDGID(1000, 1001)),
		llb.WithCustomName("[internal] settings cache mount permissions"))
	rf := busybox.Network(llb.NetModeHost).Security(llb.SecurityModeInsecure).Run(
		llb.Args([]string{"/bin/sh", "-c", "true"}),
		llb.AddMount("/c", seed, llb.AsPersistentCacheDir("c", llb.CacheMountLocked), llb.SourcePath("/cache")),
		llb.AddMount("/ro", busybox, llb.Readonly, llb.SourcePath("/etc")),
		llb.AddMount("/rw", busybox, llb.SourcePath("/bin"), llb.ForceNoOutput),
		llb.AddSSHSocket(llb.SSHID("gh"), llb.SSHSocketOpt("/gh.sock", 1, 2, 0o640)),
		llb.AddSecret("TOKEN", llb.SecretID("token"), llb.SecretAsEnv(true), llb.SecretOptional),
	)
	dl := llb.HTTP("http://127.0.0.1:8000/t.sh", llb.Checksum(digest.Digest("sha256:"+"ab"+"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd")),
		llb.Filename("t.sh"))
	root := &llb.ChownOpt{User: &llb.UserOpt{UID: 0}, Group: &llb.UserOpt{UID: 0}}
	write("run_features", busybox.File(llb.Copy(dl, "/t.sh", "/opt/", &llb.CopyInfo{CreateDestPath: true, ChownOpt: root}).
		Copy(rf.Root(), "/x.tar", "/srv/", &llb.CopyInfo{AttemptUnpack: true, CreateDestPath: true, FollowSymlinks: true,
			CopyDirContentsOnly: true})))
	out, err := json.MarshalIndent(digests, "", "  ")
	if err != nil {
		panic(err)
	}
	os.Stdout.Write(append(out, '\n'))
}
