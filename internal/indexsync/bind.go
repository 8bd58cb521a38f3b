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

package indexsync

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	crcache "sigs.k8s.io/controller-runtime/pkg/cache"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/provenance"
)

// BindTokenRequests has informers (the manager's cache, which every replica starts, leader
// or not) feed the TokenRequests' statuses to the index (index.Index.Bind), and makes the
// syncer's first list wait for them.
func (x *Syncer) BindTokenRequests(ctx context.Context, informers crcache.Informers) error {
	trs, err := informers.GetInformer(ctx, &tokensv1alpha1.TokenRequest{})
	if err != nil {
		return fmt.Errorf("setting up the TokenRequest informer: %w", err)
	}
	if _, err := trs.AddEventHandler(bindHandler(x.Index)); err != nil {
		return err
	}
	x.WaitFor = trs.HasSynced
	return nil
}

// bindHandler is the event handler of an informer of TokenRequests (every replica's,
// not only the leader's) that tells tokens what each TokenRequest's status records of its
// token (index.Index.Bind): a TokenRequest's Secret proves no more than that.
func bindHandler(tokens *index.Index) toolscache.ResourceEventHandler {
	bind := func(obj any) {
		if tr, ok := obj.(*tokensv1alpha1.TokenRequest); ok {
			tokens.Bind(types.NamespacedName{Namespace: tr.Namespace, Name: tr.Name}, provenance.BindingOf(tr))
		}
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    bind,
		UpdateFunc: func(_, obj any) { bind(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if tr, ok := obj.(*tokensv1alpha1.TokenRequest); ok {
				tokens.Bind(types.NamespacedName{Namespace: tr.Namespace, Name: tr.Name}, nil)
			}
		},
	}
}
