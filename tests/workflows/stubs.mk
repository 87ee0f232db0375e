# ---- stubs for tests/workflows/test_wiring.py (this copy only) ----
validate:
	@mkdir -p reports/validation && echo '{"success": true}' > reports/validation/result.json
train:
	@mkdir -p reports/training
	@if grep -q 'min: 0.9999' config.yaml; then \
	  printf '| rule | observed | limit |\n|---|---|---|\n| roc_auc >= 0.9999 | 0.84 | fail |\n' > reports/training/pr_comment.md; \
	  echo "error: gate rejected: roc_auc 0.84 < 0.9999" >&2; exit 4; fi
	@printf '| rule | observed | limit |\n|---|---|---|\n| roc_auc >= 0.8 | 0.84 | pass |\n' > reports/training/pr_comment.md
package:
	@mkdir -p build/bundle && echo "stub model" > build/bundle/model.txt
stage:
	@test -f build/bundle/model.txt
smoke:
	@curl -fsS --retry 30 --retry-connrefused --retry-delay 1 "$(URL)/ready"
deploy-staging:
	@case "$(IMAGE)" in *@sha256:*) ;; *) echo "error: not a digest: $(IMAGE)" >&2; exit 2;; esac
	@mkdir -p infra/k8s/overlays/staging
	@printf 'images:\n  - name: app\n    newName: %s\n    digest: %s\n' "$${IMAGE%@*}" "$${IMAGE#*@}" > infra/k8s/overlays/staging/kustomization.yaml
	@git add infra/k8s/overlays/staging && git commit -qm "Deploy $(IMAGE) to staging" && git push -q origin HEAD:main
drift:
	@mkdir -p reports/drift && echo "| feature | p |" > reports/drift/report.md
	@case "$${STUB_DRIFT:-0}" in 10) v=true;; 0) v=false;; *) v="";; esac; \
	  if [ -n "$$v" ]; then echo "{\"drifted\": $$v}" > reports/drift/report.json; fi; exit $${STUB_DRIFT:-0}
retrain:
	@test "$(PUSH)" != 1 || { echo "error: the drift workflow must not run make retrain PUSH=1" >&2; exit 1; }
	@mkdir -p reports/retrain && echo "## Drift table and champion vs challenger" > reports/retrain/pr.md
	@echo "retrained $$(date +%s%N)" > retrain-note.txt
promote:
	@mkdir -p infra/k8s/overlays/production
	@cp infra/k8s/overlays/staging/kustomization.yaml infra/k8s/overlays/production/kustomization.yaml
	@mkdir -p reports/promote && echo "# Promote model version 1 from staging to production" > reports/promote/pr.md
