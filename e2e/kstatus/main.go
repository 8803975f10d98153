// Command kstatus prints the kstatus verdict (sigs.k8s.io/cli-utils, the library Flux, Argo CD's
// kstatus mode and Helm 4's --wait use) of one Kubernetes object read as JSON on stdin, as JSON:
// {"status": "Current|InProgress|Failed|...", "message": "..."}. The e2e tests feed it live
// InferenceModels to prove that tools built on kstatus read their health correctly.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: cannot read stdin:", err)
		os.Exit(2)
	}
	// Unstructured's own decoder keeps integers as int64, which kstatus's accessors require.
	object := &unstructured.Unstructured{}
	if err := object.UnmarshalJSON(data); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: stdin is not a Kubernetes object:", err)
		os.Exit(2)
	}
	result, err := status.Compute(object)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(2)
	}
	verdict := map[string]string{"status": result.Status.String(), "message": result.Message}
	if err := json.NewEncoder(os.Stdout).Encode(verdict); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(2)
	}
}
