/*
Copyright 2026 The token-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package plugin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/store"
	"github.com/tokenops/token-operator/internal/token"
)

// pollInterval is how often a waiting command reads the TokenRequest again.
const pollInterval = 250 * time.Millisecond

// session is what every command shares: the kubectl flags and the clients made from them.
type session struct {
	flags   *genericclioptions.ConfigFlags
	streams genericiooptions.IOStreams
	timeout time.Duration
	now     func() time.Time
}

// client connects with the usual kubectl flags (--kubeconfig, --context, -n, ...).
func (s *session) client() (client.Client, string, error) {
	cfg, err := s.flags.ToRESTConfig()
	if err != nil {
		return nil, "", err
	}
	ns, _, err := s.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, "", err
	}
	// A command makes a handful of requests; client-go's default of 5 per second would make a
	// short --timeout fail in the rate limiter, not at the API server.
	cfg.QPS, cfg.Burst = 50, 100
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), tokensv1alpha1.AddToScheme(scheme)); err != nil {
		return nil, "", err
	}
	// kubectl's discovery cache (~/.kube/cache), refreshed when a kind is missing from it.
	mapper, err := s.flags.ToRESTMapper()
	if err != nil {
		return nil, "", err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme, Mapper: mapper})
	return c, ns, err
}

// tokenRequest reads the named TokenRequest of the current namespace.
func (s *session) tokenRequest(ctx context.Context, name string) (client.Client, *tokensv1alpha1.TokenRequest, error) {
	c, ns, err := s.client()
	if err != nil {
		return nil, nil, err
	}
	tr := &tokensv1alpha1.TokenRequest{}
	return c, tr, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, tr)
}

// NewCommand is `kubectl tokenops` with its verbs.
func NewCommand(streams genericiooptions.IOStreams) *cobra.Command {
	s := &session{flags: genericclioptions.NewConfigFlags(true), streams: streams, now: time.Now}
	root := &cobra.Command{
		Use:           "kubectl tokenops",
		Short:         "Issue, inspect and rotate TokenRequests of token-operator",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	s.flags.AddFlags(root.PersistentFlags())
	root.PersistentFlags().DurationVar(&s.timeout, "timeout", time.Minute, "How long a command waits for the operator.")
	root.AddCommand(s.issueCommand(), s.statusCommand(), s.rotateCommand(), s.revokeCommand(), s.checkCommand())
	return root
}

func (s *session) issueCommand() *cobra.Command {
	var o issueOptions
	var wantWait, printToken bool
	cmd := &cobra.Command{
		Use:   "issue NAME --ttl DURATION [--rotate-before DURATION | --max-uses N] [--subject S] [--purpose P] [--metadata k=v] [--wait] [--print-token]",
		Short: "Create a TokenRequest; with --wait, wait until its Secret holds the token",
		Example: `  kubectl tokenops issue demo --ttl 15m --wait
  kubectl tokenops issue api-key --ttl 24h --rotate-before 1h --wait
  TOKEN=$(kubectl tokenops issue reset --ttl 10m --max-uses 1 --subject user-42 --purpose password-reset --print-token)`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := s.client()
			if err != nil {
				return err
			}
			tr, err := newTokenRequest(ns, args[0], o)
			if err != nil {
				return err
			}
			if err := c.Create(cmd.Context(), tr); err != nil {
				return err
			}
			if !wantWait && !printToken {
				_, err := fmt.Fprintf(s.streams.Out, "tokenrequest.tokens.tokenops.io/%s created\n", tr.Name)
				return err
			}
			if err := s.waitFor(cmd.Context(), c, tr, func(tr *tokensv1alpha1.TokenRequest) (bool, error) { return settled(tr) }); err != nil {
				return err
			}
			if printToken {
				return s.printToken(cmd.Context(), c, tr)
			}
			_, err = fmt.Fprintf(s.streams.Out, "tokenrequest.tokens.tokenops.io/%s ready: secret/%s holds the token, expires %s\n",
				tr.Name, tr.Status.SecretName, when(tr.Status.ExpiresAt, s.now()))
			return err
		},
	}
	cmd.Flags().DurationVar(&o.ttl, "ttl", time.Hour, "How long the token is valid.")
	cmd.Flags().DurationVar(&o.rotateBefore, "rotate-before", 0, "Rotate the token this long before it expires (the old one validates until then).")
	cmd.Flags().Int64Var(&o.maxUses, "max-uses", 0, "Make a limited-use token: the Secret goes after this many redemptions.")
	cmd.Flags().StringVar(&o.secretName, "secret-name", "", "The Secret that receives the token (default: NAME).")
	cmd.Flags().StringVar(&o.subject, "subject", "", "Whom the token is for (a user id, an e-mail address): spec.subject.")
	cmd.Flags().StringVar(&o.purpose, "purpose", "", "What the token is for (password-reset): it validates only when asked with it.")
	cmd.Flags().StringToStringVar(&o.metadata, "metadata", nil, "Metadata kept with the token, key=value (repeat or separate by commas).")
	cmd.Flags().BoolVar(&wantWait, "wait", false, "Wait until the TokenRequest is Ready and print its Secret.")
	cmd.Flags().BoolVar(&printToken, "print-token", false, "Wait, then print only the token (needs get on the Secret).")
	cmd.MarkFlagsMutuallyExclusive("rotate-before", "max-uses")
	return cmd
}

func (s *session) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status NAME",
		Short: "Show a TokenRequest: Ready, expiry, renewal, revision, uses left and its latest events",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, tr, err := s.tokenRequest(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			ns := tr.Namespace
			var secret *corev1.Secret
			if tr.Spec.MaxUses != nil && tr.Status.SecretName != "" {
				secret = &corev1.Secret{}
				if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: ns, Name: tr.Status.SecretName}, secret); err != nil {
					secret = nil
				}
			}
			events := &corev1.EventList{}
			if err := c.List(cmd.Context(), events, client.InNamespace(ns), client.MatchingFields{
				"involvedObject.name": tr.Name, "involvedObject.kind": "TokenRequest", "involvedObject.uid": string(tr.UID),
			}); err != nil && !apierrors.IsForbidden(err) {
				return err
			}
			return writeStatus(s.streams.Out, tr, secret, events.Items, s.now())
		},
	}
}

func (s *session) rotateCommand() *cobra.Command {
	var noWait bool
	cmd := &cobra.Command{
		Use:   "rotate NAME",
		Short: "Ask for a new token now (the rotate annotation with a fresh value) and wait for the new revision",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, tr, err := s.tokenRequest(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			before := tr.Status.Revision
			request := s.now().UTC().Format(time.RFC3339Nano)
			patch := client.MergeFrom(tr.DeepCopy())
			if tr.Annotations == nil {
				tr.Annotations = map[string]string{}
			}
			tr.Annotations[tokensv1alpha1.AnnotationRotate] = request
			if err := c.Patch(cmd.Context(), tr, patch); err != nil {
				return err
			}
			if noWait {
				_, err := fmt.Fprintf(s.streams.Out, "tokenrequest.tokens.tokenops.io/%s rotation requested\n", tr.Name)
				return err
			}
			if err := s.waitFor(cmd.Context(), c, tr, func(tr *tokensv1alpha1.TokenRequest) (bool, error) {
				return rotated(tr, request, before), nil
			}); err != nil {
				return err
			}
			_, err = fmt.Fprintf(s.streams.Out, "tokenrequest.tokens.tokenops.io/%s rotated: revision %d, secret/%s, expires %s\n",
				tr.Name, tr.Status.Revision, tr.Status.SecretName, when(tr.Status.ExpiresAt, s.now()))
			return err
		},
	}
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "Return once the rotation is requested.")
	return cmd
}

// revokeCommand is `kubectl tokenops revoke ID`: a token issued over HTTP, revoked with the
// caller's own Kubernetes credentials (the store's RevokeByID).
func (s *session) revokeCommand() *cobra.Command {
	return &cobra.Command{
		Use: "revoke ID",
		Short: "Revoke a token issued over HTTP by its id, in the namespace of -n (the operator's --http-namespace): " +
			"its record is removed from the token slice that holds it, or its Secret of the earlier layout is deleted",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, ok := token.ParseID(args[0])
			if !ok {
				return fmt.Errorf("%q is not a token id: want the 16 lower-case hex digits before the \":\" of a token", args[0])
			}
			c, ns, err := s.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), s.timeout)
			defer cancel()
			holder, err := store.RevokeByID(ctx, c, ns, id)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(s.streams.Out, "token %s revoked (secret/%s)\n", id, holder)
			return err
		},
	}
}

func (s *session) checkCommand() *cobra.Command {
	check := &cobra.Command{Use: "check", Short: "Check the installation"}
	var operatorNamespace, leaseName string
	api := &cobra.Command{
		Use:   "api",
		Short: "Check that the TokenRequest API is served and an operator replica leads; waits up to --timeout",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ns, err := s.client()
			if err != nil {
				return err
			}
			var last error
			err = wait.PollUntilContextTimeout(cmd.Context(), time.Second, s.timeout, true, func(context.Context) (bool, error) {
				// Each attempt runs to its end, so that the error reported is the last
				// answer, never the deadline cutting an attempt short.
				attempt, cancel := context.WithTimeout(cmd.Context(), s.timeout)
				defer cancel()
				last = s.checkAPI(attempt, c, ns, operatorNamespace, leaseName)
				return last == nil, nil
			})
			if err != nil {
				return fmt.Errorf("not ready after %s: %w", s.timeout, last)
			}
			_, err = fmt.Fprintln(s.streams.Out, "The token-operator API is ready")
			return err
		},
	}
	api.Flags().StringVar(&operatorNamespace, "operator-namespace", "token-operator-system", "The namespace the operator runs in (its leader election Lease).")
	api.Flags().StringVar(&leaseName, "lease-name", "token-operator.tokenops.io", "The operator's leader election Lease.")
	check.AddCommand(api)
	return check
}

// checkAPI is one attempt of `check api`: a TokenRequest passes a server-side dry run (the
// CRD is installed and served) and the operator's leader Lease is live.
func (s *session) checkAPI(ctx context.Context, c client.Client, ns, operatorNamespace, leaseName string) error {
	probe, err := newTokenRequest(ns, "tokenops-check-api", issueOptions{ttl: time.Minute})
	if err != nil {
		return err
	}
	if err := c.Create(ctx, probe, client.DryRunAll); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("the TokenRequest API is not served: %w", err)
	}
	lease := &coordinationv1.Lease{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: leaseName}, lease); err != nil {
		return fmt.Errorf("no operator leader election Lease: %w", err)
	}
	if err := checkLease(lease, s.now()); err != nil {
		return err
	}
	_, _ = fmt.Fprintf(s.streams.ErrOut, "TokenRequest API served; operator leader %s\n", holder(lease))
	return nil
}

// waitFor reads tr until done says so, or --timeout passes; tr holds what was read last.
func (s *session) waitFor(ctx context.Context, c client.Client, tr *tokensv1alpha1.TokenRequest,
	done func(*tokensv1alpha1.TokenRequest) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	key := client.ObjectKeyFromObject(tr)
	err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, key, tr); err != nil {
			return false, err
		}
		return done(tr)
	})
	if wait.Interrupted(err) {
		return fmt.Errorf("tokenrequest %s: still waiting after %s (kubectl tokenops status %s)", tr.Name, s.timeout, tr.Name)
	}
	return err
}

// printToken prints the token the TokenRequest's Secret holds: the one output of the plugin
// that carries a token, asked for by name.
func (s *session) printToken(ctx context.Context, c client.Client, tr *tokensv1alpha1.TokenRequest) error {
	secret := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: tr.Namespace, Name: tr.Status.SecretName}, secret); err != nil {
		return err
	}
	_, err := fmt.Fprintln(s.streams.Out, string(secret.Data[token.DataToken]))
	return err
}
