file "#{node['out_dir']}/chef" do
  content "port #{node['app']['port']}\n"
end
