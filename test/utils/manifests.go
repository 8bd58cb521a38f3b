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

package utils

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// CopyConfig copies the kustomize folder config to dst and, with restartTargets, turns on the
// restart-targets component in the copy's config/default as its comment says to. It returns
// the copy's default folder.
func CopyConfig(config, dst string, restartTargets bool) (string, error) {
	if err := os.CopyFS(dst, os.DirFS(config)); err != nil {
		return "", err
	}
	dir := filepath.Join(dst, "default")
	if !restartTargets {
		return dir, nil
	}
	file := filepath.Join(dir, "kustomization.yaml")
	k, err := os.ReadFile(file) //nolint:gosec // the copy the caller asked for, under its folder

	if err != nil {
		return "", err
	}
	on := strings.Replace(string(k), "#components:\n#- ../components/restart-targets", "components:\n- ../components/restart-targets", 1)
	if on == string(k) {
		return "", errors.New("config/default/kustomization.yaml has no commented restart-targets component to turn on")
	}
	return dir, os.WriteFile(file, []byte(on), 0o600) //nolint:gosec // the same file, in the copy
}

// DecodeObjects reads a stream of YAML documents (kubectl kustomize, helm template) into
// objects, skipping empty documents.
func DecodeObjects(rendered []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(rendered), 4096)
	for {
		u := &unstructured.Unstructured{}
		err := d.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

// EnableComponent turns on the opt-in component config/components/name in a copy's
// config/default folder (from CopyConfig), as its comments say to: it uncomments the component's
// entry and, if still commented, the components: line.
func EnableComponent(defaultDir, name string) error {
	file := filepath.Join(defaultDir, "kustomization.yaml")
	k, err := os.ReadFile(file) //nolint:gosec // the copy the caller asked for, under its folder
	if err != nil {
		return err
	}
	entry := "\n#- ../components/" + name + "\n"
	if !strings.Contains(string(k), entry) {
		return errors.New("config/default/kustomization.yaml has no commented " + name + " component to turn on")
	}
	on := strings.Replace(string(k), entry, "\n- ../components/"+name+"\n", 1)
	on = strings.Replace(on, "\n#components:\n", "\ncomponents:\n", 1)
	return os.WriteFile(file, []byte(on), 0o600) //nolint:gosec // the same file, in the copy
}
