// A toy BuildKit frontend for llbkit's tests: a JSON spec to LLB, run through BuildKit's
// gateway (gateway.v0) like any custom frontend a team would write.
//
// It reads the spec file (the frontend option "filename", default "build.json") from the local
// dir "dockerfile", skipping leading "#" lines (so a "# syntax=" directive can select it), and
// returns an image for the requested platform:
//
//	{"base": "registry/busybox@sha256:...", "files": {"/path": "content"}, "env": ["K=V"], "cmd": ["cat", "/path"]}
//
// Errors name the file, as a frontend's errors should.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/frontend/gateway/grpcclient"
	"github.com/moby/buildkit/util/appcontext"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

type spec struct {
	Base  string            `json:"base"`
	Files map[string]string `json:"files"`
	Env   []string          `json:"env"`
	Cmd   []string          `json:"cmd"`
}

func build(ctx context.Context, c client.Client) (*client.Result, error) {
	opts := c.BuildOpts().Opts
	filename := opts["filename"]
	if filename == "" {
		filename = "build.json"
	}
	src := llb.Local("dockerfile", llb.IncludePatterns([]string{filename}), llb.SessionID(c.BuildOpts().SessionID),
		llb.SharedKeyHint("toy-frontend-spec"), llb.WithCustomName("[toy] load "+filename))
	def, err := src.Marshal(ctx)
	if err != nil {
		return nil, err
	}
	res, err := c.Solve(ctx, client.SolveRequest{Definition: def.ToPB()})
	if err != nil {
		return nil, err
	}
	ref, err := res.SingleRef()
	if err != nil {
		return nil, err
	}
	dt, err := ref.ReadFile(ctx, client.ReadRequest{Filename: filename})
	if err != nil {
		return nil, fmt.Errorf("toy frontend: cannot read %s: %w", filename, err)
	}
	var lines []string
	for _, l := range strings.Split(string(dt), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			lines = append(lines, l)
		}
	}
	var s spec
	if err := json.Unmarshal([]byte(strings.Join(lines, "\n")), &s); err != nil {
		return nil, fmt.Errorf("toy frontend: %s is not a valid spec: %v", filename, err)
	}
	p := platforms.DefaultSpec()
	if v := opts["platform"]; v != "" {
		if p, err = platforms.Parse(v); err != nil {
			return nil, err
		}
	}
	img := ocispecs.Image{Platform: ocispecs.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant},
		RootFS: ocispecs.RootFS{Type: "layers"}}
	st := llb.Scratch().Platform(p)
	if s.Base != "" {
		st = llb.Image(s.Base, llb.Platform(p), llb.WithCustomName("[toy] base "+s.Base))
	}
	names := make([]string, 0, len(s.Files))
	for k := range s.Files {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		st = st.File(llb.Mkdir(path.Dir(name), 0o755, llb.WithParents(true)).
			Mkfile(name, 0o644, []byte(s.Files[name])), llb.WithCustomName("[toy] write "+name))
	}
	img.Config.Env = s.Env
	img.Config.Cmd = s.Cmd
	def, err = st.Marshal(ctx, llb.Platform(p))
	if err != nil {
		return nil, err
	}
	res, err = c.Solve(ctx, client.SolveRequest{Definition: def.ToPB()})
	if err != nil {
		return nil, err
	}
	if ref, err = res.SingleRef(); err != nil {
		return nil, err
	}
	config, err := json.Marshal(img)
	if err != nil {
		return nil, err
	}
	out := client.NewResult()
	out.SetRef(ref)
	out.AddMeta(exptypes.ExporterImageConfigKey, config)
	return out, nil
}

func main() {
	if err := grpcclient.RunFromEnvironment(appcontext.Context(), build); err != nil {
		fmt.Fprintf(os.Stderr, "error: %+v\n", err)
		os.Exit(1)
	}
}
