#!/bin/sh
# The official nginx image's 20-envsubst-on-templates.sh, reduced to what it promises.
set -eu
template_dir="${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}"
suffix="${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}"
output_dir="${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}"
filter="${NGINX_ENVSUBST_FILTER:-}"
if [ -d "$template_dir" ]; then
  defined="$(env | cut -d= -f1 | grep -E "${filter:-.}" | sed 's/^/${/; s/$/}/' | tr '\n' ' ')"
  for template in "$template_dir"/*"$suffix"; do
    [ -f "$template" ] || continue
    name="$(basename "$template" "$suffix")"
    mkdir -p "$output_dir"
    envsubst "$defined" <"$template" >"$output_dir/$name"
    echo "$0: rendered $template to $output_dir/$name"
  done
fi
exec "$@"
