// Oracle for codemem's Java path extraction: JavaParser's own AST, reshaped to JavaParser 3.0.0-alpha.4's.
//
// code2vec/code2seq's JavaExtractor walks JavaParser 3.0.0-alpha.4's AST. Debian packages JavaParser
// 3.16, whose AST differs in known ways; this program rebuilds the alpha.4 shape from 3.16's tree
// (facts read from alpha.4's sources: names are Strings except the NameExpr children of
// MethodDeclaration, MethodCallExpr, FieldAccessExpr and annotations; VariableDeclaratorId is a node;
// declarations keep the element type and one ArrayBracketPair leaf per `[]`; Parameter lists its
// id before its type; modifiers are no nodes). Then, per method with a body, it counts the leaf
// pairs a path may join (length <= L, width <= W) by shape (edges up, edges down, width) and by path
// string (node names in a shared vocabulary, with child indices).
//
// Written for codemem (not derived from the original extractor's code).
// Usage: java -Xss1g -cp javaparser-core.jar:. PathShapes SRC.zip MAX_LEN MAX_WIDTH < entries.txt
// Output, one line per method: M <tab> entry <tab> line <tab> name <tab> leaves <tab> contexts <tab> up:down:width=n;...
// then P <tab> entry <tab> line <tab> name (<tab> path=n)*,
// S <tab> entry <tab> line <tab> name <tab> why, for methods with syntax alpha.4 cannot parse (skipped),
// and F <tab> entry <tab> reason for files JavaParser 3.16 cannot parse.

import com.github.javaparser.JavaParser;
import com.github.javaparser.ParseResult;
import com.github.javaparser.ParserConfiguration;
import com.github.javaparser.ast.CompilationUnit;
import com.github.javaparser.ast.Modifier;
import com.github.javaparser.ast.Node;
import com.github.javaparser.ast.body.ClassOrInterfaceDeclaration;
import com.github.javaparser.ast.body.ConstructorDeclaration;
import com.github.javaparser.ast.body.FieldDeclaration;
import com.github.javaparser.ast.body.MethodDeclaration;
import com.github.javaparser.ast.body.Parameter;
import com.github.javaparser.ast.body.VariableDeclarator;
import com.github.javaparser.ast.comments.Comment;
import com.github.javaparser.ast.expr.AnnotationExpr;
import com.github.javaparser.ast.nodeTypes.NodeWithAnnotations;
import com.github.javaparser.ast.nodeTypes.NodeWithVariables;
import com.github.javaparser.ast.expr.FieldAccessExpr;
import com.github.javaparser.ast.expr.MemberValuePair;
import com.github.javaparser.ast.expr.MethodCallExpr;
import com.github.javaparser.ast.expr.Name;
import com.github.javaparser.ast.expr.NameExpr;
import com.github.javaparser.ast.expr.NullLiteralExpr;
import com.github.javaparser.ast.expr.SimpleName;
import com.github.javaparser.ast.expr.VariableDeclarationExpr;
import com.github.javaparser.ast.stmt.BreakStmt;
import com.github.javaparser.ast.stmt.ContinueStmt;
import com.github.javaparser.ast.stmt.LabeledStmt;
import com.github.javaparser.ast.stmt.Statement;
import com.github.javaparser.ast.stmt.SwitchEntry;
import com.github.javaparser.ast.stmt.TryStmt;
import com.github.javaparser.ast.type.ArrayType;
import com.github.javaparser.ast.type.ClassOrInterfaceType;
import com.github.javaparser.ast.type.Type;
import com.github.javaparser.ast.type.TypeParameter;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

public class PathShapes {
    /** A node of the alpha.4-shaped tree. */
    static final class T {
        final String type;
        final String text; // for leaves only (null: compute from the JavaParser node)
        final Node node;
        final boolean statement;
        final List<T> kids = new ArrayList<>();
        T parent;
        int index, depth;

        T(String type, Node node, String text) {
            this.type = type;
            this.node = node;
            this.text = text;
            this.statement = node instanceof Statement;
        }

        String text() {
            return text != null ? text : node.toString();
        }

        boolean isLeaf() {
            if (!kids.isEmpty() || statement) return false;
            String s = text();
            return !s.isEmpty() && (!"null".equals(s) || node instanceof NullLiteralExpr);
        }
    }

    static int maxLen, maxWidth;

    static List<Node> children(Node n) {
        List<Node> out = new ArrayList<>();
        for (Node c : n.getChildNodes()) {
            if (!(c instanceof Comment) && !(c instanceof Modifier)) out.add(c);
        }
        out.sort(Comparator.comparing(c -> c.getBegin().get()));
        return out;
    }

    /** Element type of a declaration (array levels unwrapped) and the number of `[]` pairs. */
    static Type element(Type t) {
        while (t instanceof ArrayType) t = ((ArrayType) t).getComponentType();
        return t;
    }

    static int levels(Type t) {
        int k = 0;
        while (t instanceof ArrayType) {
            t = ((ArrayType) t).getComponentType();
            k++;
        }
        return k;
    }

    /** `[]` written after the name (C style): alpha.4 keeps them on the VariableDeclaratorId. */
    static int nameLevels(Type t) {
        int k = 0;
        for (; t instanceof ArrayType; t = ((ArrayType) t).getComponentType()) {
            if (((ArrayType) t).getOrigin() == ArrayType.Origin.NAME) k++;
        }
        return k;
    }

    static T declaratorId(SimpleName name, Type type) {
        int k = nameLevels(type);
        if (k == 0) return new T("VariableDeclaratorId", name, name.getIdentifier());
        T id = new T("VariableDeclaratorId", name, null);
        brackets(id, k);
        return id;
    }

    static void brackets(T t, int k) {
        for (int i = 0; i < k; i++) t.kids.add(new T("ArrayBracketPair", null, "[]"));
    }

    /** The alpha.4-shaped node for `n`, or null where alpha.4 has a String instead of a node. */
    static T build(Node n) {
        Node parent = n.getParentNode().orElse(null);
        if (n instanceof SimpleName) {
            String id = ((SimpleName) n).getIdentifier();
            if (parent instanceof MethodDeclaration || parent instanceof MethodCallExpr || parent instanceof FieldAccessExpr
                    || parent instanceof ClassOrInterfaceDeclaration || parent instanceof ConstructorDeclaration)
                return new T("NameExpr", n, id);
            if (parent instanceof VariableDeclarator || parent instanceof Parameter)
                return new T("VariableDeclaratorId", n, id);
            return null;
        }
        String type = n instanceof Name ? "NameExpr" : n.getClass().getSimpleName();
        T t = new T(type, n, null);
        if (n instanceof NameExpr) return t; // the name is a String: NameExpr is the leaf
        if (n instanceof VariableDeclarationExpr || n instanceof FieldDeclaration) {
            NodeWithVariables<?> v = (NodeWithVariables<?>) n;
            for (AnnotationExpr a : ((NodeWithAnnotations<?>) n).getAnnotations()) add(t, build(a));
            Type declared = v.getVariables().get(0).getType();
            add(t, build(element(declared)));
            for (VariableDeclarator d : v.getVariables()) {
                T dt = new T("VariableDeclarator", d, null);
                add(dt, declaratorId(d.getName(), d.getType()));
                d.getInitializer().ifPresent(init -> add(dt, build(init)));
                add(t, dt);
            }
            brackets(t, levels(declared) - nameLevels(declared));
            return t;
        }
        if (n instanceof Parameter) {
            Parameter p = (Parameter) n;
            for (AnnotationExpr a : p.getAnnotations()) add(t, build(a));
            add(t, declaratorId(p.getName(), p.getType()));
            add(t, build(element(p.getType())));
            brackets(t, levels(p.getType()) - nameLevels(p.getType()));
            return t;
        }
        if (n instanceof MethodDeclaration) {
            MethodDeclaration m = (MethodDeclaration) n;
            for (Node c : children(n)) {
                if (c == m.getType()) {
                    add(t, build(element(m.getType())));
                } else if (m.getReceiverParameter().isPresent() && c == m.getReceiverParameter().get()) {
                    continue;
                } else {
                    add(t, build(c));
                }
                if (c instanceof Parameter && c == m.getParameters().get(m.getParameters().size() - 1)
                        || c instanceof SimpleName && m.getParameters().isEmpty()) {
                    brackets(t, levels(m.getType()));
                }
            }
            return t;
        }
        if (n instanceof ClassOrInterfaceDeclaration) { // alpha.4: annotations, name, members, then the types
            ClassOrInterfaceDeclaration d = (ClassOrInterfaceDeclaration) n;
            List<Node> order = new ArrayList<>(d.getAnnotations());
            order.add(d.getName());
            order.addAll(d.getMembers());
            order.addAll(d.getTypeParameters());
            order.addAll(d.getExtendedTypes());
            order.addAll(d.getImplementedTypes());
            for (Node c : order) add(t, build(c));
            return t;
        }
        for (Node c : children(n)) {
            boolean droppedName = c instanceof SimpleName && (n instanceof ClassOrInterfaceType || n instanceof TypeParameter
                    || n instanceof LabeledStmt || n instanceof BreakStmt || n instanceof ContinueStmt
                    || n instanceof MemberValuePair);
            if (!droppedName) add(t, build(c));
        }
        return t;
    }

    /** ORACLE_DUMP=methodName prints that method's reshaped tree to stderr (debugging). */
    static void dump(T t, int indent) {
        System.err.println("  ".repeat(indent) + t.type + (t.kids.isEmpty() ? "  " + t.text() + (t.isLeaf() ? "" : "  (no leaf)") : ""));
        for (T k : t.kids) dump(k, indent + 1);
    }

    static void add(T parent, T kid) {
        if (kid != null) parent.kids.add(kid);
    }

    static void method(String entry, MethodDeclaration m, StringBuilder out) {
        T root = build(m);
        if (m.getNameAsString().equals(System.getenv("ORACLE_DUMP"))) dump(root, 0);
        List<T> leaves = new ArrayList<>();
        ArrayDeque<T> stack = new ArrayDeque<>();
        stack.push(root);
        while (!stack.isEmpty()) {
            T t = stack.pop();
            for (int i = t.kids.size() - 1; i >= 0; i--) {
                T k = t.kids.get(i);
                k.parent = t;
                k.index = i;
                k.depth = t.depth + 1;
                stack.push(k);
            }
            if (t.isLeaf()) leaves.add(t);
        }
        Map<String, Integer> shapes = new TreeMap<>();
        Map<String, Integer> paths = new TreeMap<>();
        List<T> ups = new ArrayList<>(), downs = new ArrayList<>();
        long contexts = 0;
        int n = leaves.size();
        if (n <= 3000) {
            for (int i = 0; i < n; i++) {
                for (int j = i + 1; j < n; j++) {
                    T a = leaves.get(i), b = leaves.get(j);
                    ups.clear();
                    downs.clear();
                    ups.add(a);
                    downs.add(b);
                    while (a.depth > b.depth) { a = a.parent; ups.add(a); }
                    while (b.depth > a.depth) { b = b.parent; downs.add(b); }
                    while (a.parent != b.parent) { a = a.parent; b = b.parent; ups.add(a); downs.add(b); }
                    int up = ups.size(), down = downs.size();
                    if (up + down > maxLen) continue;
                    int width = b.index - a.index;
                    if (width > maxWidth) continue;
                    shapes.merge(up + ":" + down + ":" + width, 1, Integer::sum);
                    paths.merge(path(ups, a.parent, downs), 1, Integer::sum);
                    contexts++;
                }
            }
        } else {
            contexts = -1;
        }
        out.append("M\t").append(entry).append('\t').append(m.getBegin().get().line).append('\t')
                .append(m.getNameAsString()).append('\t').append(n).append('\t').append(contexts).append('\t');
        StringBuilder s = new StringBuilder();
        for (Map.Entry<String, Integer> e : shapes.entrySet()) {
            if (s.length() > 0) s.append(';');
            s.append(e.getKey()).append('=').append(e.getValue());
        }
        out.append(s).append('\n');
        out.append("P\t").append(entry).append('\t').append(m.getBegin().get().line).append('\t')
                .append(m.getNameAsString());
        for (Map.Entry<String, Integer> e : paths.entrySet()) out.append('\t').append(e.getKey()).append('=').append(e.getValue());
        out.append('\n');
    }

    /** Node names in a vocabulary shared with codemem's (JavaParser 3.0.0-alpha.4's class names, coarsened). */
    static String vocab(T t) {
        switch (t.type) {
            case "ForEachStmt": return "ForeachStmt";
            case "SwitchEntry": return "SwitchEntryStmt";
            case "SwitchExpr": return "SwitchStmt";
            case "LocalClassDeclarationStmt": return "TypeDeclarationStmt";
            case "LongLiteralExpr": return "IntegerLiteralExpr";
            case "TextBlockLiteralExpr": return "StringLiteralExpr";
            case "SingleMemberAnnotationExpr": case "NormalAnnotationExpr": return "AnnotationExpr";
            case "VarType": return "ClassOrInterfaceType";
            default: return t.type;
        }
    }

    static boolean idParent(T t) {
        return t != null && ID_PARENTS.contains(t.type);
    }

    static final java.util.Set<String> ID_PARENTS = java.util.Set.of("AssignExpr", "ArrayAccessExpr", "FieldAccessExpr", "MethodCallExpr");

    /** The path string, child indices placed as the study's extractor places them (per its documented
     *  behaviour: both end leaves; going up, nodes whose parent is one of ID_PARENTS; going down, nodes
     *  that are one of ID_PARENTS; the common node when its parent is one of them). */
    static String path(List<T> ups, T lca, List<T> downs) {
        StringBuilder b = new StringBuilder();
        for (int k = 0; k < ups.size(); k++) {
            T t = ups.get(k);
            b.append(vocab(t)).append(k == 0 || idParent(t.parent) ? String.valueOf(t.index) : "").append('^');
        }
        b.append(vocab(lca)).append(idParent(lca.parent) ? String.valueOf(lca.index) : "");
        for (int k = downs.size() - 1; k >= 0; k--) {
            T t = downs.get(k);
            b.append('_').append(vocab(t)).append(k == 0 || idParent(t) ? String.valueOf(t.index) : "");
        }
        return b.toString();
    }

    /** Java 9+ syntax (switch rules and expressions, yield, text blocks, patterns, `try (variable)`): alpha.4 parses none of it. */
    static boolean modern(MethodDeclaration m) {
        for (Node n : m.findAll(Node.class)) {
            String type = n.getClass().getSimpleName();
            if (type.equals("SwitchExpr") || type.equals("YieldStmt") || type.equals("TextBlockLiteralExpr")
                    || type.equals("PatternExpr")) return true;
            if (n instanceof SwitchEntry && ((SwitchEntry) n).getType() != SwitchEntry.Type.STATEMENT_GROUP) return true;
            if (n instanceof TryStmt) { // Java 9 `try (existingVariable)`
                for (Node r : ((TryStmt) n).getResources()) if (!(r instanceof VariableDeclarationExpr)) return true;
            }
        }
        return false;
    }

    public static void main(String[] args) throws Exception {
        maxLen = Integer.parseInt(args[1]);
        maxWidth = Integer.parseInt(args[2]);
        ParserConfiguration config = new ParserConfiguration()
                .setLanguageLevel(ParserConfiguration.LanguageLevel.JAVA_14)
                .setAttributeComments(false);
        JavaParser parser = new JavaParser(config);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        try (ZipFile zip = new ZipFile(args[0])) {
            String entry;
            while ((entry = in.readLine()) != null) {
                if (entry.isEmpty()) continue;
                ZipEntry ze = zip.getEntry(entry);
                String code = new String(zip.getInputStream(ze).readAllBytes(), StandardCharsets.UTF_8);
                StringBuilder out = new StringBuilder();
                try {
                    ParseResult<CompilationUnit> r = parser.parse(code);
                    if (!r.isSuccessful() || !r.getResult().isPresent()) {
                        System.out.println("F\t" + entry + "\tparse");
                        continue;
                    }
                    for (MethodDeclaration m : r.getResult().get().findAll(MethodDeclaration.class)) {
                        if (!m.getBody().isPresent()) continue;
                        if (modern(m)) {
                            out.append("S\t").append(entry).append('\t').append(m.getBegin().get().line).append('\t')
                                    .append(m.getNameAsString()).append("\tsyntax newer than JavaParser 3.0.0-alpha.4\n");
                        } else {
                            method(entry, m, out);
                        }
                    }
                } catch (RuntimeException | StackOverflowError e) {
                    System.out.println("F\t" + entry + "\t" + e.getClass().getSimpleName());
                    continue;
                }
                System.out.print(out);
            }
        }
        System.out.flush();
    }
}
