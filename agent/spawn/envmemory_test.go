package spawn

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/go-logr/logr"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// scriptedSource answers each read with the next of its answers.
type scriptedSource struct{ answers []answer }

type answer struct {
	v   string
	ok  bool
	err error
}

func (s *scriptedSource) Value(context.Context, ferryv1.EnvVarSource) (string, bool, error) {
	a := s.answers[0]
	s.answers = s.answers[1:]
	return a.v, a.ok, a.err
}

func TestEnvMemory(t *testing.T) {
	secret := ferryv1.EnvVarSource{SecretKeyRef: &ferryv1.KeySelector{Name: "s", Key: "k"}}
	other := ferryv1.EnvVarSource{SecretKeyRef: &ferryv1.KeySelector{Name: "s", Key: "other"}}
	away := &EnvUnreadError{Err: errors.New("could not read Secret: connection refused"), Unanswered: true}
	refused := &EnvUnreadError{Err: errors.New("the agent may not get Secrets")}
	missing := errors.New(`Secret "s" does not exist`)
	read := answer{v: "v1", ok: true}
	type step struct {
		revision string
		from     ferryv1.EnvVarSource
		answer   answer // the API server's
		want     answer // the spawn's
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"an unanswered read gets the revision's value", []step{
			{"1", secret, read, read},
			{"1", secret, answer{err: away}, read},
		}},
		{"an optional reference found missing stays so", []step{
			{"1", secret, answer{}, answer{}},
			{"1", secret, answer{err: away}, answer{}},
		}},
		{"a newer value read is the one kept", []step{
			{"1", secret, read, read},
			{"1", secret, answer{v: "v2", ok: true}, answer{v: "v2", ok: true}},
			{"1", secret, answer{err: away}, answer{v: "v2", ok: true}},
		}},
		{"another revision's value is not given", []step{
			{"1", secret, read, read},
			{"2", secret, answer{err: away}, answer{err: away}},
		}},
		{"another key's value is not given", []step{
			{"1", secret, read, read},
			{"1", other, answer{err: away}, answer{err: away}},
		}},
		{"a refusal is not covered, and forgets", []step{
			{"1", secret, read, read},
			{"1", secret, answer{err: refused}, answer{err: refused}},
			{"1", secret, answer{err: away}, answer{err: away}},
		}},
		{"a missing object forgets", []step{
			{"1", secret, read, read},
			{"1", secret, answer{err: missing}, answer{err: missing}},
			{"1", secret, answer{err: away}, answer{err: away}},
		}},
		{"the last answer of a key, for every revision that read it", []step{
			{"1", secret, read, read},
			{"2", secret, answer{v: "v2", ok: true}, answer{v: "v2", ok: true}},
			{"3", secret, answer{v: "v3", ok: true}, answer{v: "v3", ok: true}},
			{"1", secret, answer{err: away}, answer{v: "v3", ok: true}},
			{"2", secret, answer{err: away}, answer{v: "v3", ok: true}},
		}},
		{"an optional reference found missing since, for every revision", []step{
			{"1", secret, read, read},
			{"2", secret, answer{}, answer{}},
			{"1", secret, answer{err: away}, answer{}},
		}},
		{"a refusal forgets for every revision", []step{
			{"1", secret, read, read},
			{"2", secret, read, read},
			{"2", secret, answer{err: refused}, answer{err: refused}},
			{"1", secret, answer{err: away}, answer{err: away}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mem EnvMemory
			for i, s := range tc.steps {
				src := mem.source(s.revision, &scriptedSource{answers: []answer{s.answer}}, logr.Discard())
				v, ok, err := src.Value(context.Background(), s.from)
				if got := (answer{v, ok, err}); got != s.want {
					t.Fatalf("step %d (revision %s, API server %+v): got %+v, want %+v", i, s.revision, s.answer, got, s.want)
				}
			}
		})
	}
}

// TestEnvMemoryKeep: the owner's trim forgets the revisions it no longer
// runs, and only those.
func TestEnvMemoryKeep(t *testing.T) {
	from := ferryv1.EnvVarSource{SecretKeyRef: &ferryv1.KeySelector{Name: "s", Key: "k"}}
	var mem EnvMemory
	for _, rev := range []string{"1", "2", "3"} {
		mem.remember(rev, from, rememberedValue{"v" + rev, true})
	}
	mem.Keep(func(rev string) bool { return rev != "2" })
	for rev, want := range map[string]bool{"1": true, "2": false, "3": true} {
		if _, found := mem.recall(rev, from); found != want {
			t.Errorf("revision %s kept %v, want %v", rev, found, want)
		}
	}
}

// TestEnvMemoryGivenUpReadForgetsNothing: a read cut short because the
// spawn was given up (the pool closing) is no answer of the API server.
func TestEnvMemoryGivenUpReadForgetsNothing(t *testing.T) {
	from := ferryv1.EnvVarSource{SecretKeyRef: &ferryv1.KeySelector{Name: "s", Key: "k"}}
	var mem EnvMemory
	mem.remember("1", from, rememberedValue{"v1", true})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	src := mem.source("1", &scriptedSource{answers: []answer{{err: context.Canceled}}}, logr.Discard())
	if _, _, err := src.Value(ctx, from); !errors.Is(err, context.Canceled) {
		t.Fatalf("the given-up read: %v, want its error", err)
	}
	if v, found := mem.recall("1", from); !found || v.value != "v1" {
		t.Errorf("after a given-up read: %+v, %v; want v1 kept", v, found)
	}
}

// TestEnvMemorySayIgnored: the app's ignored env names are said the first
// time a revision asks, not again until Keep lets the revision go; with
// no memory (a caller keeping none), every time.
func TestEnvMemorySayIgnored(t *testing.T) {
	type step struct {
		ask  string   // a revision whose spawn asks, or
		keep []string // the revisions Keep keeps, when not nil
		want bool     // for ask: whether it is said
	}
	for _, tc := range []struct {
		name     string
		noMemory bool
		steps    []step
	}{
		{"said once", false, []step{{ask: "r1", want: true}, {ask: "r1"}, {ask: "r1"}}},
		{"once for each revision", false, []step{
			{ask: "r1", want: true}, {ask: "r2", want: true}, {ask: "r1"}, {ask: "r2"}}},
		{"a revision let go is said again, a kept one is not", false, []step{
			{ask: "r1", want: true}, {ask: "r2", want: true}, {keep: []string{"r2"}}, {ask: "r1", want: true}, {ask: "r2"}}},
		{"a Keep before any is said", false, []step{{keep: []string{}}, {ask: "r1", want: true}, {ask: "r1"}}},
		{"no memory: every time", true, []step{{ask: "r1", want: true}, {ask: "r1", want: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := &EnvMemory{}
			if tc.noMemory {
				mem = nil
			}
			for i, s := range tc.steps {
				if s.keep != nil {
					mem.Keep(func(rev string) bool { return slices.Contains(s.keep, rev) })
					continue
				}
				if got := mem.sayIgnored(s.ask); got != s.want {
					t.Errorf("step %d, %s asks: said %v, want %v", i, s.ask, got, s.want)
				}
			}
		})
	}
}
