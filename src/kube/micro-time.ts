/**
 * metav1.MicroTime as the API server parses it: RFC 3339 with six fractional digits. client-node 2.0.1
 * serialises a Date with three, which kube-apiserver refuses ("cannot parse .631Z as .000000"); a string
 * passes through its serializer unchanged, so fields of type MicroTime get this string.
 */
export function microTime(date: Date): never {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z") as never;
}
