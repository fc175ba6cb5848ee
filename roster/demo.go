package roster

import "strings"

// DemoPassword is the password of every demo account.
const DemoPassword = "demo"

// DemoSnapshot returns the demo company loaded by `vestnik serve` into an
// empty database: 30 employees (one of them a former employee) in 9 nested
// departments, with Cyrillic and Latin names. Every account's password is
// DemoPassword.
func DemoSnapshot() *Snapshot {
	depts := []SnapshotDepartment{
		{ID: "1", Name: "ООО «Вестник»", Head: "1"},
		{ID: "2", Name: "Отдел продаж", Parent: "1", Head: "2"},
		{ID: "3", Name: "Региональные продажи", Parent: "2", Head: "10"},
		{ID: "4", Name: "Разработка", Parent: "1", Head: "4"},
		{ID: "5", Name: "Бэкенд", Parent: "4", Head: "5"},
		{ID: "6", Name: "Фронтенд", Parent: "4", Head: "7"},
		{ID: "7", Name: "Тестирование", Parent: "4", Head: "17"},
		{ID: "8", Name: "Бухгалтерия", Parent: "1", Head: "8"},
		{ID: "9", Name: "HR", Parent: "1", Head: "3"},
	}
	type e struct{ id, login, name, title, depts, manager string }
	people := []e{
		{"1", "director", "Сергей Волков", "Генеральный директор", "1", ""},
		{"2", "ivanov", "Иван Иванов", "Руководитель отдела продаж", "2", ""},
		{"3", "petrova", "Мария Петрова", "Директор по персоналу", "9", ""},
		{"4", "alice", "Alice Johnson", "Технический директор", "4", ""},
		{"5", "bob", "Bob Miller", "Руководитель группы бэкенда", "5", ""},
		{"6", "smirnov", "Алексей Смирнов", "Менеджер по продажам", "2", ""},
		{"7", "kuznetsova", "Ольга Кузнецова", "Руководитель группы фронтенда", "6", ""},
		{"8", "sokolova", "Елена Соколова", "Главный бухгалтер", "8", "27"},
		{"9", "popov", "Дмитрий Попов", "Менеджер по продажам", "2", ""},
		{"10", "vasilieva", "Анна Васильева", "Руководитель региональных продаж", "3", ""},
		{"11", "morozov", "Павел Морозов", "Региональный менеджер", "3", ""},
		{"12", "novikova", "Татьяна Новикова", "Менеджер по работе с клиентами", "3", ""},
		{"13", "fedorov", "Николай Фёдоров", "Backend-разработчик", "5", ""},
		{"14", "carol", "Carol White", "Backend developer", "5", ""},
		{"15", "lebedeva", "Светлана Лебедева", "Frontend-разработчик", "6", ""},
		{"16", "dave", "Dave Brown", "Frontend developer", "6", ""},
		{"17", "kozlov", "Артём Козлов", "Ведущий инженер по тестированию", "7", ""},
		{"18", "eve", "Eve Davis", "QA engineer", "7", ""},
		{"19", "orlova", "Наталья Орлова", "Бухгалтер", "8", ""},
		{"20", "zaitsev", "Игорь Зайцев", "Бухгалтер по расчёту зарплаты", "8", ""},
		{"21", "pavlova", "Ксения Павлова", "HR-менеджер", "9", ""},
		{"22", "semenov", "Роман Семёнов", "Рекрутер", "9", ""},
		{"23", "golubeva", "Вера Голубева", "Помощник генерального директора", "1", ""},
		{"24", "frank", "Frank Müller", "DevOps-инженер", "4,5", ""},
		{"25", "egorov", "Максим Егоров", "Системный администратор", "4", ""},
		{"26", "nikitina", "Дарья Никитина", "Дизайнер интерфейсов", "6", ""},
		{"27", "makarov", "Григорий Макаров", "Финансовый директор", "1", ""},
		{"28", "grace", "Grace Lee", "Аналитик данных", "4", "4"},
		{"29", "belov", "Виктор Белов", "Менеджер по продажам", "2", ""},
		{"30", "sidorov", "Пётр Сидоров", "Менеджер по продажам (уволен)", "2", ""},
	}
	snap := &Snapshot{Departments: depts}
	for _, p := range people {
		emp := SnapshotEmployee{
			ID: ExtID(p.id), Login: p.login, Name: p.name, Title: p.title,
			Email: p.login + "@vestnik.example", Manager: ExtID(p.manager), Password: DemoPassword,
		}
		for _, d := range strings.Split(p.depts, ",") {
			emp.Departments = append(emp.Departments, ExtID(d))
		}
		if p.login == "sidorov" {
			emp.Active = new(bool)
		}
		snap.Employees = append(snap.Employees, emp)
	}
	return snap
}
